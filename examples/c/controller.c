/*
 * An exposure controller in C: reads the processor's brightness statistics (a
 * float64 array [mean, bright fraction]) and sends the camera an exposure command
 * (a float64 array [gain]) with the frame number it answers.
 *
 * It shows the two halves of the C API: dora's own functions (init, next event,
 * event type, input id, free) and the Arrow C Data Interface for typed data in and
 * out. Build it with `dora build dataflow.yml` (which runs `make -C c`).
 */
#include <stdio.h>
#include <string.h>

#include "dora_node_api.h"

#define TARGET_BRIGHTNESS 128.0

/* The array we send owns nothing: its buffers live on the caller's stack until the send returns. */
static void release_nothing(struct ArrowArray *array) { array->release = NULL; }
static void release_schema(struct ArrowSchema *schema) { schema->release = NULL; }

int main(void) {
  void *dora = init_dora_context_from_env();
  if (!dora) {
    fprintf(stderr, "controller: %s\n", dora_last_error());
    return 1;
  }
  unsigned commands = 0;
  double gain = 1.0;
  void *event;
  while ((event = dora_next_event(dora)) != NULL) {
    if (read_dora_event_type(event) == DoraEventType_Input) {
      struct ArrowArray in;
      struct ArrowSchema in_schema;
      /* zero copy: in.buffers point into the received message */
      if (dora_event_arrow(event, &in, &in_schema) == 0) {
        if (strcmp(in_schema.format, "g") == 0 && in.length >= 1) {
          const double *stats = (const double *)in.buffers[1] + in.offset;
          double mean = stats[0] > 1.0 ? stats[0] : 1.0;
          gain = TARGET_BRIGHTNESS / mean;

          const void *buffers[2] = {NULL, &gain};
          struct ArrowArray out = {.length = 1, .null_count = 0, .n_buffers = 2, .buffers = buffers, .release = release_nothing};
          struct ArrowSchema out_schema = {.format = "g", .name = "", .flags = ARROW_FLAG_NULLABLE, .release = release_schema};
          DoraMetadata *metadata = dora_metadata_new();
          int64_t frame;
          if (dora_metadata_get_int(dora_event_metadata(event), "frame", &frame) == 0) dora_metadata_set_int(metadata, "frame", frame);
          if (dora_send_output_arrow(dora, "command", 7, &out, &out_schema, metadata) == 0) commands++;
          else fprintf(stderr, "controller: %s\n", dora_last_error());
          dora_metadata_free(metadata);
        }
        in.release(&in);
        in_schema.release(&in_schema);
      }
    }
    free_dora_event(event);
  }
  printf("controller: sent %u exposure commands, last gain %.2f\n", commands, gain);
  free_dora_context(dora);
  return 0;
}
