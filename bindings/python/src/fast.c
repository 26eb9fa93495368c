/*
 * dora._native as a CPython module: the calls made per message (receive an event, send
 * an array or bytes), each one crossing into the core once, with the parameters dict
 * converted straight to and from the core's metadata map. Everything else goes through ctypes (dora/_ffi.py), which
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

/* Set by configure(): ns -> datetime, and (key, value) -> ns for a datetime value
 * (raising TypeError, with the key, for a value of no supported type). */
static PyObject *to_datetime, *timestamp_ns;

static PyObject *value_error(const char *key) {
  const char *message = dora_last_error();
  return PyErr_Format(PyExc_ValueError, "metadata: parameter \"%s\": %s", key, message ? message : "invalid"), NULL;
}

/* A received message's parameters as a dict, straight from the core's map. */
static PyObject *metadata_to_dict(const DoraMetadata *m) {
  PyObject *dict = PyDict_New();
  if (!dict) return NULL;
  size_t n = dora_metadata_len(m);
  for (size_t i = 0; i < n; i++) {
    const char *key = dora_metadata_key(m, i);
    PyObject *value = NULL;
    bool b;
    int64_t v;
    double d;
    const char *str;
    size_t len;
    switch (dora_metadata_type(m, key)) {
      case DORA_PARAMETER_BOOL: dora_metadata_get_bool(m, key, &b); value = PyBool_FromLong(b); break;
      case DORA_PARAMETER_INT: dora_metadata_get_int(m, key, &v); value = PyLong_FromLongLong(v); break;
      case DORA_PARAMETER_TIMESTAMP:
        dora_metadata_get_int(m, key, &v);
        value = to_datetime ? PyObject_CallFunction(to_datetime, "L", (long long)v) : PyLong_FromLongLong(v);
        break;
      case DORA_PARAMETER_FLOAT: dora_metadata_get_float(m, key, &d); value = PyFloat_FromDouble(d); break;
      case DORA_PARAMETER_STRING:
        dora_metadata_get_string(m, key, &str, &len);
        value = PyUnicode_DecodeUTF8(str ? str : "", (Py_ssize_t)len, "replace");
        break;
      case DORA_PARAMETER_LIST_INT:
      case DORA_PARAMETER_LIST_FLOAT: {
        const int64_t *ints = NULL;
        const double *floats = NULL;
        bool is_int = dora_metadata_type(m, key) == DORA_PARAMETER_LIST_INT;
        if (is_int) dora_metadata_get_int_list(m, key, &ints, &len);
        else dora_metadata_get_float_list(m, key, &floats, &len);
        if (!(value = PyList_New((Py_ssize_t)len))) break;
        for (size_t k = 0; k < len; k++) {
          PyObject *item = is_int ? PyLong_FromLongLong(ints[k]) : PyFloat_FromDouble(floats[k]);
          if (!item) Py_CLEAR(value);
          if (!value) break;
          PyList_SET_ITEM(value, (Py_ssize_t)k, item);
        }
        break;
      }
      case DORA_PARAMETER_LIST_BOOL:
      case DORA_PARAMETER_LIST_STRING: {
        bool is_bool = dora_metadata_type(m, key) == DORA_PARAMETER_LIST_BOOL;
        dora_metadata_list_len(m, key, &len);
        if (!(value = PyList_New((Py_ssize_t)len))) break;
        for (size_t k = 0; k < len; k++) {
          size_t item_len = 0;
          dora_metadata_get_list_item(m, key, k, &str, &item_len, &b);
          PyObject *item = is_bool ? PyBool_FromLong(b) : PyUnicode_DecodeUTF8(str ? str : "", (Py_ssize_t)item_len, "replace");
          if (!item) Py_CLEAR(value);
          if (!value) break;
          PyList_SET_ITEM(value, (Py_ssize_t)k, item);
        }
        break;
      }
      default: continue;
    }
    if (!value || PyDict_SetItemString(dict, key, value) < 0) {
      Py_XDECREF(value);
      Py_DECREF(dict);
      return NULL;
    }
    Py_DECREF(value);
  }
  return dict;
}

/* Sets key to a list value: only bools, only ints, only numbers or only strings. */
static int set_list(DoraMetadata *m, const char *key, PyObject *seq) {
  Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
  PyObject **items = PySequence_Fast_ITEMS(seq);
  bool bools = true, ints = true, numbers = true, strings = true;
  for (Py_ssize_t i = 0; i < n; i++) {
    PyObject *e = items[i];
    bool is_bool = PyBool_Check(e);
    bools &= is_bool;
    ints &= PyLong_Check(e) && !is_bool;
    numbers &= (PyLong_Check(e) || PyFloat_Check(e)) && !is_bool;
    strings &= PyUnicode_Check(e);
  }
  int rc = -1;
  if (n == 0 || ints) {
    int64_t *xs = PyMem_Malloc(((size_t)n + 1) * sizeof *xs);
    if (!xs) return PyErr_NoMemory(), -1;
    for (Py_ssize_t i = 0; i < n; i++) {
      xs[i] = PyLong_AsLongLong(items[i]);
      if (xs[i] == -1 && PyErr_Occurred()) {
        PyMem_Free(xs);
        PyErr_Format(PyExc_ValueError, "metadata: parameter \"%s\": integer out of the int64 range", key);
        return -1;
      }
    }
    rc = dora_metadata_set_int_list(m, key, xs, (size_t)n);
    PyMem_Free(xs);
  } else if (numbers) {
    double *xs = PyMem_Malloc((size_t)n * sizeof *xs);
    if (!xs) return PyErr_NoMemory(), -1;
    for (Py_ssize_t i = 0; i < n; i++) xs[i] = PyFloat_AsDouble(items[i]);
    rc = PyErr_Occurred() ? -2 : dora_metadata_set_float_list(m, key, xs, (size_t)n);
    PyMem_Free(xs);
    if (rc == -2) return -1;
  } else if (bools) {
    bool *xs = PyMem_Malloc((size_t)n * sizeof *xs);
    if (!xs) return PyErr_NoMemory(), -1;
    for (Py_ssize_t i = 0; i < n; i++) xs[i] = items[i] == Py_True;
    rc = dora_metadata_set_bool_list(m, key, xs, (size_t)n);
    PyMem_Free(xs);
  } else if (strings) {
    const char **xs = PyMem_Malloc((size_t)n * sizeof *xs);
    if (!xs) return PyErr_NoMemory(), -1;
    for (Py_ssize_t i = 0; i < n; i++) {
      Py_ssize_t len;
      if (!(xs[i] = PyUnicode_AsUTF8AndSize(items[i], &len)) || (size_t)len != strlen(xs[i])) {
        PyMem_Free(xs);
        if (!PyErr_Occurred()) PyErr_Format(PyExc_ValueError, "metadata: parameter \"%s\": a list string contains a NUL character", key);
        return -1;
      }
    }
    rc = dora_metadata_set_string_list(m, key, xs, (size_t)n);
    PyMem_Free(xs);
  } else {
    PyErr_Format(PyExc_ValueError, "metadata: parameter \"%s\": a list must hold only booleans, only numbers or only strings", key);
    return -1;
  }
  return rc == 0 ? 0 : (value_error(key), -1);
}

static int set_value(DoraMetadata *m, const char *key, PyObject *value) {
  int rc;
  if (PyBool_Check(value)) {
    rc = dora_metadata_set_bool(m, key, value == Py_True);
  } else if (PyLong_Check(value)) {
    long long v = PyLong_AsLongLong(value);
    if (v == -1 && PyErr_Occurred()) {
      PyErr_Format(PyExc_ValueError, "metadata: parameter \"%s\": integer out of the int64 range", key);
      return -1;
    }
    rc = dora_metadata_set_int(m, key, v);
  } else if (PyFloat_Check(value)) {
    rc = dora_metadata_set_float(m, key, PyFloat_AS_DOUBLE(value));
  } else if (PyUnicode_Check(value)) {
    Py_ssize_t len;
    const char *s = PyUnicode_AsUTF8AndSize(value, &len);
    if (!s) return -1;
    rc = dora_metadata_set_string(m, key, s, (size_t)len);
  } else if (PyList_Check(value) || PyTuple_Check(value)) {
    PyObject *seq = PySequence_Fast(value, "a list");
    if (!seq) return -1;
    rc = set_list(m, key, seq);
    Py_DECREF(seq);
    return rc;
  } else if (PyDict_Check(value)) {
    PyErr_Format(PyExc_ValueError, "metadata: parameter \"%s\": objects are not supported (bool, number, string or a list of one of these)", key);
    return -1;
  } else {
    /* A datetime, or a TypeError naming the key and the type (Python decides). */
    PyObject *ns = timestamp_ns ? PyObject_CallFunction(timestamp_ns, "sO", key, value) : NULL;
    if (!ns) {
      if (!PyErr_Occurred()) PyErr_Format(PyExc_TypeError, "metadata '%s': unsupported value", key);
      return -1;
    }
    long long v = PyLong_AsLongLong(ns);
    Py_DECREF(ns);
    if (v == -1 && PyErr_Occurred()) return -1;
    rc = dora_metadata_set_timestamp(m, key, v);
  }
  return rc == 0 ? 0 : (value_error(key), -1);
}

/* A new map from a parameters dict (None or a dict); NULL with an exception set on failure.
 * The key "timestamp" (the message's own) and None values are skipped. */
static DoraMetadata *metadata_from_dict(PyObject *params) {
  DoraMetadata *m = dora_metadata_new();
  if (!m) return (DoraMetadata *)last_error();
  if (params == Py_None) return m;
  if (!PyDict_Check(params)) {
    dora_metadata_free(m);
    PyErr_SetString(PyExc_TypeError, "metadata must be a dict");
    return NULL;
  }
  PyObject *key_obj, *value;
  Py_ssize_t pos = 0;
  while (PyDict_Next(params, &pos, &key_obj, &value)) {
    PyObject *key_str = PyObject_Str(key_obj);
    const char *key = key_str ? PyUnicode_AsUTF8(key_str) : NULL;
    int rc = key ? 0 : -1;
    if (key && value != Py_None && strcmp(key, "timestamp") != 0) rc = set_value(m, key, value);
    Py_XDECREF(key_str);
    if (rc != 0) {
      dora_metadata_free(m);
      return NULL;
    }
  }
  return m;
}

/*
 * next_event(context, timeout_ms, array, schema) -> None on timeout or at the end of the
 * stream, else (type, input_id, timestamp_ns, parameters, message). For an INPUT the
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
    if (!(metadata = metadata_to_dict(dora_event_metadata(event)))) goto done;
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
 * send_arrow(context, output_id, array, schema, parameters) -> None. Sends the exported
 * array with the parameters dict, then releases the array and schema (they were exported
 * for this send only). Raises RuntimeError, or ValueError/TypeError for a parameter.
 */
static PyObject *send_arrow(PyObject *self, PyObject *args) {
  (void)self;
  PyObject *context_obj, *array_obj, *schema_obj, *params;
  const char *id;
  Py_ssize_t id_len;
  if (!PyArg_ParseTuple(args, "Oy#OOO", &context_obj, &id, &id_len, &array_obj, &schema_obj, &params)) return NULL;
  DoraContext *context = PyLong_AsVoidPtr(context_obj);
  struct ArrowArray *array = PyLong_AsVoidPtr(array_obj);
  struct ArrowSchema *schema = PyLong_AsVoidPtr(schema_obj);
  if (PyErr_Occurred()) return NULL;
  DoraMetadata *metadata = metadata_from_dict(params);
  if (!metadata) {
    dora_arrow_release(array, schema);
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

/* send_bytes(context, output_id, data, parameters) -> None: data (any bytes-like object) as uint8. */
static PyObject *send_bytes(PyObject *self, PyObject *args) {
  (void)self;
  PyObject *context_obj, *params;
  const char *id;
  Py_ssize_t id_len;
  Py_buffer data;
  if (!PyArg_ParseTuple(args, "Oy#y*O", &context_obj, &id, &id_len, &data, &params)) return NULL;
  DoraContext *context = PyLong_AsVoidPtr(context_obj);
  DoraMetadata *metadata = PyErr_Occurred() ? NULL : metadata_from_dict(params);
  if (!metadata) {
    PyBuffer_Release(&data);
    return NULL;
  }
  int rc;
  Py_BEGIN_ALLOW_THREADS
  rc = dora_send_output_with_metadata(context, id, (size_t)id_len, data.buf, (size_t)data.len, metadata);
  Py_END_ALLOW_THREADS
  PyBuffer_Release(&data);
  dora_metadata_free(metadata);
  if (rc != 0) return last_error();
  Py_RETURN_NONE;
}

/* metadata_new(parameters) -> the address of a new DoraMetadata (free with dora_metadata_free). */
static PyObject *metadata_new(PyObject *self, PyObject *params) {
  (void)self;
  DoraMetadata *m = metadata_from_dict(params);
  return m ? PyLong_FromVoidPtr(m) : NULL;
}

/* metadata_dict(address) -> the parameters of a DoraMetadata as a dict. */
static PyObject *metadata_dict(PyObject *self, PyObject *address) {
  (void)self;
  const DoraMetadata *m = PyLong_AsVoidPtr(address);
  return PyErr_Occurred() ? NULL : metadata_to_dict(m);
}

/* configure(to_datetime, timestamp_ns): how timestamps become datetimes and back. */
static PyObject *configure(PyObject *self, PyObject *args) {
  (void)self;
  PyObject *a, *b;
  if (!PyArg_ParseTuple(args, "OO", &a, &b)) return NULL;
  Py_XSETREF(to_datetime, Py_NewRef(a));
  Py_XSETREF(timestamp_ns, Py_NewRef(b));
  Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"next_event", next_event, METH_VARARGS, "The next event of a context as a tuple (see fast.c)."},
    {"send_arrow", send_arrow, METH_VARARGS, "Sends an exported Arrow array with a parameters dict."},
    {"send_bytes", send_bytes, METH_VARARGS, "Sends bytes as uint8 with a parameters dict."},
    {"metadata_new", metadata_new, METH_O, "A new DoraMetadata from a parameters dict (its address)."},
    {"metadata_dict", metadata_dict, METH_O, "The parameters of a DoraMetadata (by address) as a dict."},
    {"configure", configure, METH_VARARGS, "Sets the timestamp converters: (ns -> datetime, (key, value) -> ns)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "dora._native", "The native core of dora-ts (hot paths).", -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&module); }
