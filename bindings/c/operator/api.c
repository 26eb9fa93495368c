/*
 * The functions an operator calls (operator_types.h). Built into the static archive
 * libdora_operator_api_c.a that operators link, and into every runtime process, which
 * exports them for operators linked without it.
 */
#include <string.h>

#include "abi.h"

char *dora_read_input_id(const Input_t *input) {
  if (!input || input->abi != DORA_OPERATOR_ABI) return NULL;
  char *id = malloc(input->id_len + 1);
  if (!id) return NULL;
  memcpy(id, input->id, input->id_len);
  id[input->id_len] = '\0';
  return id;
}

Vec_uint8_t dora_read_data(Input_t *input) {
  Vec_uint8_t data = {NULL, 0, 0};
  if (!input || input->abi != DORA_OPERATOR_ABI) return data;
  data.ptr = malloc(input->data_len ? input->data_len : 1); /* never NULL for empty data */
  if (!data.ptr) return data;
  if (input->data_len) memcpy(data.ptr, input->data, input->data_len);
  data.len = data.cap = input->data_len;
  return data;
}

void dora_free_data(Vec_uint8_t data) { free(data.ptr); }

void dora_free_input_id(char *input_id) { free(input_id); }

DoraResult_t dora_send_operator_output(const SendOutput_t *send_output, const char *id, const uint8_t *data_ptr, size_t data_len) {
  if (!send_output || !send_output->send_output.call) return dora__operator_error("dora_send_operator_output: send_output is NULL");
  if (!id) return dora__operator_error("dora_send_operator_output: the output id is NULL");
  if (!data_ptr && data_len) return dora__operator_error("dora_send_operator_output: data is NULL but its length is %zu", data_len);
  Output_t output = {DORA_OPERATOR_ABI, id, data_ptr, data_len};
  return send_output->send_output.call(send_output->send_output.env_ptr, output);
}
