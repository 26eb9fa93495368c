/*
 * dora._native as a CPython module: the two calls made per message (receive an event,
 * send an array), each one crossing into the core instead of the eight and five
 * ctypes calls they took. Everything else goes through ctypes (dora/_ffi.py), which
 * loads this same shared object: one core, one set of globals.
 *
 * Only the public C API is used. Contexts and Arrow structs travel as addresses
 * (Python ints), as they do through ctypes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "dora_node_api.h"

static PyObject *last_error(void) {
  const char *message = dora_last_error();
  PyErr_SetString(PyExc_RuntimeError, message ? message : "unknown error");
  return NULL;
}

/* The event's metadata as JSON bytes (NULL with an exception set on failure). */
static PyObject *metadata_json(const DoraEvent *event) {
  size_t len = 0;
  char *json = dora_metadata_to_json(dora_event_metadata(event), &len);
  if (!json) return last_error();
  PyObject *bytes = PyBytes_FromStringAndSize(json, (Py_ssize_t)len);
  dora_free_string(json);
  return bytes;
}

/*
 * next_event(context, timeout_ms, array, schema) -> None on timeout or at the end of the
 * stream, else (type, input_id, timestamp_ns, metadata_json, message). For an INPUT the
 * array and schema structs are filled (the caller imports them into pyarrow, which then
 * owns them); the event itself is freed here.
 */
static PyObject *next_event(PyObject *self, PyObject *args) {
  (void)self;
  PyObject *context_obj, *array_obj, *schema_obj;
  long long timeout_ms;
  if (!PyArg_ParseTuple(args, "OLOO", &context_obj, &timeout_ms, &array_obj, &schema_obj)) return NULL;
  DoraContext *context = PyLong_AsVoidPtr(context_obj);
  struct ArrowArray *array = PyLong_AsVoidPtr(array_obj);
  struct ArrowSchema *schema = PyLong_AsVoidPtr(schema_obj);
  if (PyErr_Occurred()) return NULL;

  DoraEvent *event;
  Py_BEGIN_ALLOW_THREADS
  event = dora_next_event_timeout(context, (int64_t)timeout_ms);
  Py_END_ALLOW_THREADS
  if (!event) Py_RETURN_NONE;

  enum DoraEventType type = read_dora_event_type(event);
  PyObject *id = Py_None, *metadata = Py_None, *message = Py_None;
  unsigned long long timestamp = 0;
  Py_INCREF(Py_None);
  Py_INCREF(Py_None);
  Py_INCREF(Py_None);
  PyObject *result = NULL;
  if (type == DoraEventType_Input || type == DoraEventType_InputClosed) {
    char *ptr = NULL;
    size_t len = 0;
    read_dora_input_id(event, &ptr, &len);
    Py_DECREF(id);
    if (!(id = PyUnicode_DecodeUTF8(ptr ? ptr : "", (Py_ssize_t)len, "replace"))) goto done;
  }
  if (type == DoraEventType_Input) {
    timestamp = read_dora_input_timestamp(event);
    Py_DECREF(metadata);
    if (!(metadata = metadata_json(event))) goto done;
    if (dora_event_arrow(event, array, schema) != 0) {
      last_error();
      goto done;
    }
  } else {
    const char *text = dora_event_message(event);
    if (text) {
      Py_DECREF(message);
      if (!(message = PyUnicode_DecodeUTF8(text, (Py_ssize_t)strlen(text), "replace"))) goto done;
    }
  }
  result = Py_BuildValue("(iOKOO)", (int)type, id, timestamp, metadata, message);
done:
  Py_XDECREF(id);
  Py_XDECREF(metadata);
  Py_XDECREF(message);
  free_dora_event(event);
  return result;
}

/*
 * send_arrow(context, output_id, array, schema, metadata_json) -> None. Sends the exported
 * array with the metadata built from the JSON object, then releases the array and schema
 * (they were exported for this send only). Raises RuntimeError or ValueError (metadata).
 */
static PyObject *send_arrow(PyObject *self, PyObject *args) {
  (void)self;
  PyObject *context_obj, *array_obj, *schema_obj;
  const char *id, *json;
  Py_ssize_t id_len, json_len;
  if (!PyArg_ParseTuple(args, "Oy#OOy#", &context_obj, &id, &id_len, &array_obj, &schema_obj, &json, &json_len)) return NULL;
  DoraContext *context = PyLong_AsVoidPtr(context_obj);
  struct ArrowArray *array = PyLong_AsVoidPtr(array_obj);
  struct ArrowSchema *schema = PyLong_AsVoidPtr(schema_obj);
  if (PyErr_Occurred()) return NULL;

  DoraMetadata *metadata = dora_metadata_from_json(json, (size_t)json_len);
  if (!metadata) {
    dora_arrow_release(array, schema);
    const char *message = dora_last_error();
    PyErr_Format(PyExc_ValueError, "metadata: %s", message ? message : "invalid");
    return NULL;
  }
  int rc;
  Py_BEGIN_ALLOW_THREADS
  rc = dora_send_output_arrow(context, id, (size_t)id_len, array, schema, metadata);
  Py_END_ALLOW_THREADS
  dora_arrow_release(array, schema);
  dora_metadata_free(metadata);
  if (rc != 0) return last_error();
  Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"next_event", next_event, METH_VARARGS, "The next event of a context as a tuple (see fast.c)."},
    {"send_arrow", send_arrow, METH_VARARGS, "Sends an exported Arrow array with JSON metadata (see fast.c)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "dora._native", "The native core of dora-ts (hot paths).", -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&module); }
