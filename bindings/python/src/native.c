/*
 * dora._native: the Python binding of libdora_node_api, a CPython extension module
 * compiled together with the C library (bindings/c/src) into one shared object. Every
 * call from Python into the core goes through here; no raw pointer reaches Python.
 *
 *   Context      a node's DoraContext: next_event, send_arrow, send_bytes, log, close.
 *                Once closed, every call but close() raises NoContextError("node is closed")
 *                (a dora.DoraError, and a RuntimeError).
 *   ArrowExport  a received input exported through the Arrow C Data Interface, handed to
 *                pyarrow through the Arrow PyCapsule interface (__arrow_c_array__). Its
 *                buffers are the received bytes (the sender's shared memory for large
 *                inputs): zero copy. The sample goes back to its sender when pyarrow frees
 *                the array.
 *
 * Sending reads an array through its own __arrow_c_array__ capsules (any object of the
 * PyCapsule interface, pyarrow's arrays among them). The parameters dict is converted
 * straight to and from the core's metadata map. Each message crosses into the core once.
 *
 * Errors: a failure of the core raises the dora.DoraError subclass of its code (the
 * catalogue of protocol/facts.json, generated into dora/_facts.py), with the core's
 * message; each also derives from the built-in exception raised before codes existed
 * (RuntimeError mostly, ValueError for invalid arguments).
 *
 * Threads: the core serves a context from one thread at a time, so each Context has a
 * lock. It is held only around calls into the core, with the GIL released, never while
 * Python code runs: a finalizer or logging handler that calls back into the node while an
 * event is being converted cannot deadlock. A received event is the caller's alone once
 * dequeued (it holds its own reference to the context's state), so it is converted
 * outside the lock.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h> /* setup.py defines Py_LIMITED_API (3.11's stable ABI) when built by 3.11+ */
#include "pycompat.h" /* 3.10's API on 3.9 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dora_node_api.h"
#include "internal.h" /* dora__decode_frames, dora__encode_inline: the golden-vector tests' entry points; facts.h */

/* dora._facts.make_error(code, message): the DoraError subclass of a code, with a message. */
static PyObject *make_error;

/* Raises the error of `code` with `message`; returns NULL. */
static PyObject *raise_code(int code, const char *message) {
  PyObject *error = PyObject_CallFunction(make_error, "is", code, message);
  if (error) {
    PyErr_SetObject((PyObject *)Py_TYPE(error), error);
    Py_DECREF(error);
  }
  return NULL;
}

/* Raises TypeError(format % the name of obj's type); format has one %U. Returns NULL. */
static PyObject *type_error_of(const char *format, PyObject *obj) {
  PyObject *name = PyObject_GetAttrString((PyObject *)Py_TYPE(obj), "__qualname__");
  if (name) PyErr_Format(PyExc_TypeError, format, name);
  Py_XDECREF(name);
  return NULL;
}

/* Raises the core's last failure on this thread (its code and message), after `prefix`. */
static PyObject *core_error(const char *prefix) {
  const char *message = dora_last_error();
  PyObject *text = PyUnicode_FromFormat("%s%s", prefix, message ? message : "unknown error");
  if (!text) return NULL;
  const char *utf8 = PyUnicode_AsUTF8AndSize(text, NULL);
  if (utf8) raise_code(dora_last_error_code(), utf8);
  Py_DECREF(text);
  return NULL;
}

static PyObject *last_error(void) { return core_error(""); }

static PyObject *closed_error(void) { return raise_code(DORA_E_NO_CONTEXT, "node is closed"); }

/* Set by configure(): ns -> datetime, (key, value) -> ns for a datetime value (raising
 * TypeError, with the key, for a value of no supported type), and the importer of an
 * __arrow_c_array__ object (pyarrow.array). */
static PyObject *to_datetime, *timestamp_ns, *import_array;

/* Interned strings: the event dicts' keys and constant values. */
static PyObject *s_type, *s_id, *s_kind, *s_value, *s_metadata, *s_error, *s_timestamp, *s_dora, *s_INPUT, *s_INPUT_CLOSED, *s_STOP,
    *s_ERROR, *s_UNKNOWN, *s_MANUAL, *s_empty, *s_arrow_c_array, *s_INPUT_RECOVERED, *s_NODE_RESTARTED, *s_NODE_FAILED;

static PyObject *value_error(const char *key) {
  PyObject *prefix = PyUnicode_FromFormat("metadata: parameter \"%s\": ", key);
  const char *utf8 = prefix ? PyUnicode_AsUTF8AndSize(prefix, NULL) : NULL;
  if (utf8) core_error(utf8);
  Py_XDECREF(prefix);
  return NULL;
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
          PyList_SetItem(value, (Py_ssize_t)k, item);
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
          PyList_SetItem(value, (Py_ssize_t)k, item);
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
static int set_list(DoraMetadata *m, const char *key, Py_ssize_t n, PyObject *const *items) {
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
    rc = dora_metadata_set_float(m, key, PyFloat_AsDouble(value));
  } else if (PyUnicode_Check(value)) {
    Py_ssize_t len;
    const char *s = PyUnicode_AsUTF8AndSize(value, &len);
    if (!s) return -1;
    rc = dora_metadata_set_string(m, key, s, (size_t)len);
  } else if (PyList_Check(value) || PyTuple_Check(value)) {
    /* the stable ABI has no item array of a list or tuple: the items' (borrowed) references
     * are gathered here, on the stack for short lists */
    bool list = PyList_Check(value);
    Py_ssize_t n = list ? PyList_Size(value) : PyTuple_Size(value);
    PyObject *few[16], **items = n <= 16 ? few : PyMem_Malloc((size_t)n * sizeof *items);
    if (!items) return PyErr_NoMemory(), -1;
    for (Py_ssize_t i = 0; i < n; i++) items[i] = list ? PyList_GetItem(value, i) : PyTuple_GetItem(value, i);
    rc = set_list(m, key, n, items);
    if (items != few) PyMem_Free(items);
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
    const char *key = key_str ? PyUnicode_AsUTF8AndSize(key_str, NULL) : NULL;
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


/* ---- ArrowExport: a received input on its way into pyarrow --------------------------- */

typedef struct {
  PyObject_HEAD
  struct ArrowArray array; /* release == NULL once moved out (or never filled) */
  struct ArrowSchema schema;
} ArrowExportObject;

static PyObject *ArrowExportType; /* heap types (PyType_FromSpec): the stable ABI has no static ones */

static void release_schema_capsule(PyObject *capsule) {
  struct ArrowSchema *schema = PyCapsule_GetPointer(capsule, "arrow_schema");
  if (schema && schema->release) schema->release(schema);
  free(schema);
}

static void release_array_capsule(PyObject *capsule) {
  struct ArrowArray *array = PyCapsule_GetPointer(capsule, "arrow_array");
  if (array && array->release) array->release(array);
  free(array);
}

/* Frees an instance of a heap type, which holds a reference to its type. */
static void free_instance(PyObject *self) {
  PyTypeObject *type = Py_TYPE(self);
  ((freefunc)PyType_GetSlot(type, Py_tp_free))(self);
  Py_DECREF(type);
}

static void arrow_export_dealloc(ArrowExportObject *self) {
  dora_arrow_release(&self->array, &self->schema);
  free_instance((PyObject *)self);
}

/* __arrow_c_array__(requested_schema=None) -> (schema capsule, array capsule), once: the
 * structs move into the capsules (the consumer moves them on, or the capsules release them).
 * A requested schema is not honoured (the PyCapsule protocol allows that): the array keeps
 * the type it was sent with. */
static PyObject *arrow_export_c_array(ArrowExportObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
  (void)args;
  if (nargs > 1 || (kwnames && PyTuple_Size(kwnames) + nargs > 1))
    return PyErr_SetString(PyExc_TypeError, "__arrow_c_array__() takes at most one argument (requested_schema)"), NULL;
  if (!self->array.release) return raise_code(DORA_E_USAGE, "this input's array was already handed over");
  struct ArrowSchema *schema = malloc(sizeof *schema);
  struct ArrowArray *array = malloc(sizeof *array);
  if (!schema || !array) {
    free(schema);
    free(array);
    return PyErr_NoMemory();
  }
  schema->release = NULL;
  array->release = NULL;
  PyObject *schema_capsule = PyCapsule_New(schema, "arrow_schema", release_schema_capsule);
  if (!schema_capsule) {
    free(schema);
    free(array);
    return NULL;
  }
  PyObject *array_capsule = PyCapsule_New(array, "arrow_array", release_array_capsule);
  if (!array_capsule) {
    free(array);
    Py_DECREF(schema_capsule);
    return NULL;
  }
  *schema = self->schema;
  *array = self->array;
  self->schema.release = NULL;
  self->array.release = NULL;
  PyObject *pair = PyTuple_New(2);
  if (!pair) {
    Py_DECREF(schema_capsule);
    Py_DECREF(array_capsule);
    return NULL;
  }
  PyTuple_SetItem(pair, 0, schema_capsule);
  PyTuple_SetItem(pair, 1, array_capsule);
  return pair;
}

static PyMethodDef arrow_export_methods[] = {
    {"__arrow_c_array__", (PyCFunction)(void (*)(void))arrow_export_c_array, METH_FASTCALL | METH_KEYWORDS,
     "The Arrow C Data Interface structs as PyCapsules (arrow_schema, arrow_array); once."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot arrow_export_slots[] = {
    {Py_tp_doc, "A received input exported through the Arrow C Data Interface, for pyarrow.array() (zero copy)."},
    {Py_tp_dealloc, arrow_export_dealloc},
    {Py_tp_methods, arrow_export_methods},
    {0, NULL},
};

/* no Py_tp_new: made only by the module */
static PyType_Spec arrow_export_spec = {"dora._native.ArrowExport", sizeof(ArrowExportObject), 0, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
                                        arrow_export_slots};

/* ---- events --------------------------------------------------------------------------- */

static PyObject *decode_utf8(const char *text, size_t len) { return PyUnicode_DecodeUTF8(text ? text : "", (Py_ssize_t)len, "replace"); }

/* dict with the given key/value pairs (values are stolen; NULL values make it fail). */
static PyObject *build_dict(int n, PyObject **keys, PyObject **values) {
  PyObject *dict = NULL;
  for (int i = 0; i < n; i++)
    if (!values[i]) goto done;
  if (!(dict = PyDict_New())) goto done;
  for (int i = 0; i < n; i++)
    if (PyDict_SetItem(dict, keys[i], values[i]) < 0) {
      Py_CLEAR(dict);
      break;
    }
done:
  for (int i = 0; i < n; i++) Py_XDECREF(values[i]);
  return dict;
}

/* The input's value: the event's data as a pyarrow array over the received bytes. */
static PyObject *input_value(DoraEvent *event) {
  if (!import_array) return raise_code(DORA_E_USAGE, "dora._native.configure() was not called");
  ArrowExportObject *export = PyObject_New(ArrowExportObject, (PyTypeObject *)ArrowExportType);
  if (!export) return NULL;
  export->array.release = NULL;
  export->schema.release = NULL;
  if (dora_event_arrow(event, &export->array, &export->schema) != 0) {
    Py_DECREF(export);
    return last_error();
  }
  PyObject *value = PyObject_CallFunctionObjArgs(import_array, (PyObject *)export, NULL);
  Py_DECREF(export); /* releases the structs if pyarrow did not take them */
  return value;
}

/* The event as dora's event dict; the event stays the caller's. */
static PyObject *event_dict(DoraEvent *event) {
  enum DoraEventType type = read_dora_event_type(event);
  char *id = NULL;
  size_t id_len = 0;
  read_dora_input_id(event, &id, &id_len); /* the input's id, or for NODE_* events the node's */
  const char *message = dora_event_message(event);
  switch (type) {
    case DoraEventType_Input: {
      PyObject *metadata = metadata_to_dict(dora_event_metadata(event));
      PyObject *ns = PyLong_FromUnsignedLongLong(read_dora_input_timestamp(event));
      PyObject *when = ns && to_datetime ? PyObject_CallFunctionObjArgs(to_datetime, ns, NULL) : Py_XNewRef(ns);
      Py_XDECREF(ns);
      if (!metadata || !when || PyDict_SetItem(metadata, s_timestamp, when) < 0) {
        Py_XDECREF(metadata);
        Py_XDECREF(when);
        return NULL;
      }
      Py_DECREF(when);
      PyObject *keys[] = {s_type, s_id, s_kind, s_value, s_metadata};
      PyObject *values[] = {Py_NewRef(s_INPUT), decode_utf8(id, id_len), Py_NewRef(s_dora), input_value(event), metadata};
      return build_dict(5, keys, values);
    }
    case DoraEventType_InputClosed:
    case DoraEventType_InputRecovered:
    case DoraEventType_NodeRestarted:
    case DoraEventType_NodeFailed: {
      PyObject *name = type == DoraEventType_InputClosed      ? s_INPUT_CLOSED
                       : type == DoraEventType_InputRecovered ? s_INPUT_RECOVERED
                       : type == DoraEventType_NodeRestarted  ? s_NODE_RESTARTED
                                                              : s_NODE_FAILED;
      PyObject *keys[] = {s_type, s_id, s_kind};
      PyObject *values[] = {Py_NewRef(name), decode_utf8(id, id_len), Py_NewRef(s_dora)};
      return build_dict(3, keys, values);
    }
    case DoraEventType_Stop: {
      PyObject *keys[] = {s_type, s_id, s_kind};
      PyObject *values[] = {Py_NewRef(s_STOP), message && *message ? decode_utf8(message, strlen(message)) : Py_NewRef(s_MANUAL), Py_NewRef(s_dora)};
      return build_dict(3, keys, values);
    }
    case DoraEventType_Error: {
      PyObject *keys[] = {s_type, s_error, s_kind};
      PyObject *values[] = {Py_NewRef(s_ERROR), message ? decode_utf8(message, strlen(message)) : Py_NewRef(s_empty), Py_NewRef(s_dora)};
      return build_dict(3, keys, values);
    }
    default: {
      PyObject *keys[] = {s_type, s_kind};
      PyObject *values[] = {Py_NewRef(s_UNKNOWN), Py_NewRef(s_dora)};
      return build_dict(2, keys, values);
    }
  }
}

/* ---- Context: a node's handle --------------------------------------------------------- */

typedef struct {
  PyObject_HEAD
  DoraContext *ctx; /* NULL once closed; read and cleared under the lock */
  PyThread_type_lock lock;
} ContextObject;

/* Runs `call` on the open context under its lock with the GIL released; `closed` is set
 * (and `call` skipped) when the context is closed. */
#define WITH_CONTEXT(self, closed, call)            \
  do {                                              \
    Py_BEGIN_ALLOW_THREADS                          \
    PyThread_acquire_lock((self)->lock, WAIT_LOCK); \
    DoraContext *ctx = (self)->ctx;                 \
    if (ctx) {                                      \
      call;                                         \
    } else {                                        \
      closed = 1;                                   \
    }                                               \
    PyThread_release_lock((self)->lock);            \
    Py_END_ALLOW_THREADS                            \
  } while (0)

/* ---- joining, interruptible ---------------------------------------------------------- */

/* Joining waits for the dataflow's start, which may be long (a dynamic node joining a
 * dataflow whose nodes are still loading) or never come: it runs on a thread of its own
 * while the calling thread looks for signals every JOIN_CHECK_MS, so Ctrl-C (or any
 * handler that raises) ends the wait (dora_cancel_join) instead of being held until the
 * start. The error message travels in the join's own buffer: the core's last error is
 * per thread. */
#define JOIN_CHECK_MS 100

typedef struct {
  DoraContext *ctx;
  char error[1024];
  int code, rc;
  bool done;
  pthread_mutex_t lock;
  pthread_cond_t cond;
} join_t;

static int join_error(int code, const char *message) {
  PyObject *text = PyUnicode_FromFormat("could not join the dataflow: %s", message);
  const char *utf8 = text ? PyUnicode_AsUTF8AndSize(text, NULL) : NULL;
  if (utf8) raise_code(code, utf8);
  Py_XDECREF(text);
  return -1;
}

static void *join_thread(void *arg) {
  join_t *j = arg;
  int rc = dora_join_dataflow(j->ctx, j->error, sizeof j->error, &j->code);
  pthread_mutex_lock(&j->lock);
  j->rc = rc;
  j->done = true;
  pthread_cond_signal(&j->cond);
  pthread_mutex_unlock(&j->lock);
  return NULL;
}

/* 0 once joined; -1 with a Python exception set (the join failed, or a signal handler raised). */
static int join_interruptibly(DoraContext *ctx) {
  join_t j = {.ctx = ctx, .rc = -1};
  pthread_mutex_init(&j.lock, NULL);
  pthread_cond_init(&j.cond, NULL);
  pthread_t thread;
  if (pthread_create(&thread, NULL, join_thread, &j) != 0) {
    pthread_mutex_destroy(&j.lock);
    pthread_cond_destroy(&j.cond);
    PyErr_SetString(PyExc_RuntimeError, "could not join the dataflow: cannot start a thread");
    return -1;
  }
  bool interrupted = false, done = false;
  while (!done) {
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&j.lock);
    if (!j.done) {
      struct timespec until;
      clock_gettime(CLOCK_REALTIME, &until);
      until.tv_nsec += JOIN_CHECK_MS * 1000000L;
      if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
      pthread_cond_timedwait(&j.cond, &j.lock, &until);
    }
    done = j.done;
    pthread_mutex_unlock(&j.lock);
    Py_END_ALLOW_THREADS
    if (!done && !interrupted && PyErr_CheckSignals() < 0) {
      interrupted = true; /* the exception stays set; wait for the join to give up */
      dora_cancel_join(ctx);
    }
  }
  Py_BEGIN_ALLOW_THREADS
  pthread_join(thread, NULL);
  Py_END_ALLOW_THREADS
  pthread_mutex_destroy(&j.lock);
  pthread_cond_destroy(&j.cond);
  if (interrupted) return -1;
  if (j.rc != 0) return join_error(j.code, j.error);
  return 0;
}

/* Context(config=None): joins the dataflow with the configuration given as JSON text (a
 * dynamic node's, from dynamic_config), or else DORA_NODE_CONFIG's. */
static PyObject *context_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
  const char *config = NULL;
  static char *keywords[] = {"config", NULL};
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|z:Context", keywords, &config)) return NULL;
  ContextObject *self = (ContextObject *)((allocfunc)PyType_GetSlot(type, Py_tp_alloc))(type, 0);
  if (!self) return NULL;
  if (!(self->lock = PyThread_allocate_lock())) {
    Py_DECREF(self);
    return PyErr_NoMemory();
  }
  DoraContext *ctx;
  char error[1024] = "";
  int code = 0;
  Py_BEGIN_ALLOW_THREADS
  ctx = dora_init_context(config, error, sizeof error, &code);
  Py_END_ALLOW_THREADS
  if (!ctx) join_error(code, error);
  if (!ctx || join_interruptibly(ctx) != 0) {
    if (ctx) {
      Py_BEGIN_ALLOW_THREADS
      free_dora_context(ctx);
      Py_END_ALLOW_THREADS
    }
    Py_DECREF(self);
    return NULL;
  }
  self->ctx = ctx;
  return (PyObject *)self;
}

static void context_dealloc(ContextObject *self) {
  DoraContext *ctx = self->ctx; /* nobody else can hold self now */
  self->ctx = NULL;
  if (ctx) {
    Py_BEGIN_ALLOW_THREADS
    free_dora_context(ctx);
    Py_END_ALLOW_THREADS
  }
  if (self->lock) PyThread_free_lock(self->lock);
  free_instance((PyObject *)self);
}

/* close(): closes the outputs and leaves the dataflow; idempotent. Waits for a call in
 * another thread to finish (next_event waits at most its timeout). */
static PyObject *context_close(ContextObject *self, PyObject *unused) {
  (void)unused;
  Py_BEGIN_ALLOW_THREADS
  PyThread_acquire_lock(self->lock, WAIT_LOCK);
  DoraContext *ctx = self->ctx;
  self->ctx = NULL;
  PyThread_release_lock(self->lock);
  if (ctx) free_dora_context(ctx);
  Py_END_ALLOW_THREADS
  Py_RETURN_NONE;
}

static PyObject *context_closed(ContextObject *self, void *unused) {
  (void)unused;
  return PyBool_FromLong(self->ctx == NULL);
}

/* next_event(timeout_ms) -> the next event as dora's event dict, or None when none came
 * within timeout_ms (< 0: no limit) or the stream has ended (see stream_ended). */
static PyObject *context_next_event(ContextObject *self, PyObject *timeout_obj) {
  long long timeout_ms = PyLong_AsLongLong(timeout_obj);
  if (timeout_ms == -1 && PyErr_Occurred()) return NULL;
  DoraEvent *event = NULL;
  int closed = 0;
  WITH_CONTEXT(self, closed, event = dora_next_event_timeout(ctx, (int64_t)timeout_ms));
  if (closed) return closed_error();
  if (!event) Py_RETURN_NONE;
  PyObject *dict = event_dict(event);
  free_dora_event(event);
  return dict;
}

/* stream_ended() -> True once the event stream has ended (STOP, ERROR or every input closed). */
static PyObject *context_stream_ended(ContextObject *self, PyObject *unused) {
  (void)unused;
  bool ended = false;
  int closed = 0;
  WITH_CONTEXT(self, closed, ended = dora_event_stream_ended(ctx));
  return closed ? closed_error() : PyBool_FromLong(ended);
}

static int parse_send(const char *name, PyObject *const *args, Py_ssize_t nargs, const char **id, Py_ssize_t *id_len) {
  if (nargs != 3) return PyErr_Format(PyExc_TypeError, "%s() takes 3 arguments (output_id, data, metadata)", name), -1;
  if (!PyUnicode_Check(args[0])) return PyErr_Format(PyExc_TypeError, "%s(): output_id must be a str", name), -1;
  return (*id = PyUnicode_AsUTF8AndSize(args[0], id_len)) ? 0 : -1;
}

/* The structs behind an object's __arrow_c_array__() capsules; the pair keeps them alive
 * (the capsules release them when the pair goes). */
static PyObject *arrow_capsules(PyObject *data, struct ArrowArray **array, struct ArrowSchema **schema) {
  PyObject *pair = PyObject_CallMethodObjArgs(data, s_arrow_c_array, NULL);
  if (!pair) {
    if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
      PyErr_Clear();
      type_error_of("cannot send %U: not an Arrow array (no __arrow_c_array__)", data);
    }
    return NULL;
  }
  if (!PyTuple_Check(pair) || PyTuple_Size(pair) != 2) {
    Py_DECREF(pair);
    return PyErr_SetString(PyExc_TypeError, "__arrow_c_array__() must return (schema capsule, array capsule)"), NULL;
  }
  *schema = PyCapsule_GetPointer(PyTuple_GetItem(pair, 0), "arrow_schema");
  *array = *schema ? PyCapsule_GetPointer(PyTuple_GetItem(pair, 1), "arrow_array") : NULL;
  if (!*array) {
    Py_DECREF(pair);
    return NULL;
  }
  if (!(*schema)->release || !(*array)->release) {
    Py_DECREF(pair);
    return PyErr_SetString(PyExc_ValueError, "__arrow_c_array__() returned released structs"), NULL;
  }
  return pair;
}

/* send_arrow(output_id, data, metadata): sends an object of the Arrow PyCapsule interface
 * (a pyarrow.Array) with a parameters dict (or None). Raises RuntimeError, or
 * ValueError/TypeError for a parameter. */
static PyObject *context_send_arrow(ContextObject *self, PyObject *const *args, Py_ssize_t nargs) {
  const char *id;
  Py_ssize_t id_len;
  if (parse_send("send_arrow", args, nargs, &id, &id_len) < 0) return NULL;
  struct ArrowArray *array;
  struct ArrowSchema *schema;
  PyObject *capsules = arrow_capsules(args[1], &array, &schema);
  if (!capsules) return NULL;
  DoraMetadata *metadata = metadata_from_dict(args[2]);
  if (!metadata) {
    Py_DECREF(capsules);
    return NULL;
  }
  int rc = 0, closed = 0;
  WITH_CONTEXT(self, closed, rc = dora_send_output_arrow(ctx, id, (size_t)id_len, array, schema, metadata));
  dora_metadata_free(metadata);
  Py_DECREF(capsules); /* the send copied what it needed: the capsules release the export */
  if (closed) return closed_error();
  if (rc != 0) return last_error();
  Py_RETURN_NONE;
}

/* send_bytes(output_id, data, metadata): data (any contiguous bytes-like object) as uint8. */
static PyObject *context_send_bytes(ContextObject *self, PyObject *const *args, Py_ssize_t nargs) {
  const char *id;
  Py_ssize_t id_len;
  if (parse_send("send_bytes", args, nargs, &id, &id_len) < 0) return NULL;
  Py_buffer data;
  if (PyObject_GetBuffer(args[1], &data, PyBUF_SIMPLE) < 0) return NULL;
  DoraMetadata *metadata = metadata_from_dict(args[2]);
  if (!metadata) {
    PyBuffer_Release(&data);
    return NULL;
  }
  int rc = 0, closed = 0;
  WITH_CONTEXT(self, closed, rc = dora_send_output_with_metadata(ctx, id, (size_t)id_len, data.buf, (size_t)data.len, metadata));
  PyBuffer_Release(&data);
  dora_metadata_free(metadata);
  if (closed) return closed_error();
  if (rc != 0) return last_error();
  Py_RETURN_NONE;
}

/* send_raw(output_id, length, fill, metadata): allocates a sample of length bytes (shared
 * memory at or above the threshold), calls fill(memoryview) to write it in place, and
 * sends it as uint8: no copy. A view still exported from the memoryview after fill (a
 * numpy array kept) would alias memory the receivers own once sent: refused. */
static PyObject *context_send_raw(ContextObject *self, PyObject *const *args, Py_ssize_t nargs) {
  if (nargs != 4) return PyErr_SetString(PyExc_TypeError, "send_raw() takes 4 arguments (output_id, length, fill, metadata)"), NULL;
  const char *id;
  Py_ssize_t id_len;
  PyObject *send_args[3] = {args[0], Py_None, args[3]};
  if (parse_send("send_raw", send_args, 3, &id, &id_len) < 0) return NULL;
  Py_ssize_t length = PyLong_AsSsize_t(args[1]);
  if (length < 0) return PyErr_Occurred() ? NULL : (PyErr_SetString(PyExc_ValueError, "send_raw(): length must be >= 0"), NULL);
  if (!PyCallable_Check(args[2])) return PyErr_SetString(PyExc_TypeError, "send_raw(): fill must be callable"), NULL;
  DoraMetadata *metadata = metadata_from_dict(args[3]);
  if (!metadata) return NULL;
  DoraOutputSample *sample = NULL;
  int closed = 0;
  WITH_CONTEXT(self, closed, sample = dora_allocate_output(ctx, (size_t)length));
  if (closed || !sample) {
    dora_metadata_free(metadata);
    return closed ? closed_error() : last_error();
  }
  /* the sample is ours alone until sent: fill runs outside the context's lock, with the GIL */
  static char empty;
  char *data = length > 0 ? (char *)dora_output_sample_data(sample) : &empty;
  PyObject *view = PyMemoryView_FromMemory(data, length, PyBUF_WRITE);
  PyObject *filled = view ? PyObject_CallFunctionObjArgs(args[2], view, NULL) : NULL;
  PyObject *released = view ? PyObject_CallMethod(view, "release", NULL) : NULL;
  Py_XDECREF(view);
  if (!filled || !released) {
    if (filled && PyErr_ExceptionMatches(PyExc_BufferError)) {
      PyErr_Clear();
      PyErr_SetString(PyExc_BufferError, "send_output_raw: a view of the buffer outlives fill (a numpy array or memoryview made from it): "
                                         "the sample belongs to its receivers once sent, so drop such views inside fill");
    }
    Py_XDECREF(filled);
    Py_XDECREF(released);
    WITH_CONTEXT(self, closed, dora_discard_output_sample(ctx, sample));
    dora_metadata_free(metadata);
    return NULL;
  }
  Py_DECREF(filled);
  Py_DECREF(released);
  int rc = 0;
  WITH_CONTEXT(self, closed, rc = dora_send_output_sample(ctx, id, (size_t)id_len, sample, metadata));
  dora_metadata_free(metadata);
  if (closed) return closed_error(); /* the sample went with the context */
  if (rc != 0) return last_error();
  Py_RETURN_NONE;
}

/* log(level, message[, target, fields_json]) -> whether the core took the record ("" for no target, no fields). */
static PyObject *context_log(ContextObject *self, PyObject *const *args, Py_ssize_t nargs) {
  if ((nargs != 2 && nargs != 4) || !PyUnicode_Check(args[0]) || !PyUnicode_Check(args[1]) || (nargs == 4 && (!PyUnicode_Check(args[2]) || !PyUnicode_Check(args[3]))))
    return PyErr_SetString(PyExc_TypeError, "log() takes 2 or 4 str arguments (level, message[, target, fields_json])"), NULL;
  Py_ssize_t level_len, message_len, target_len = 0, fields_len = 0;
  const char *level = PyUnicode_AsUTF8AndSize(args[0], &level_len);
  const char *message = level ? PyUnicode_AsUTF8AndSize(args[1], &message_len) : NULL;
  const char *target = "", *fields = "";
  if (message && nargs == 4) {
    target = PyUnicode_AsUTF8AndSize(args[2], &target_len);
    fields = target ? PyUnicode_AsUTF8AndSize(args[3], &fields_len) : NULL;
  }
  if (!message || !target || !fields) return NULL;
  int rc = 0, closed = 0;
  WITH_CONTEXT(self, closed,
               rc = dora_log_with_fields(ctx, level, (size_t)level_len, message, (size_t)message_len, target, (size_t)target_len, fields, (size_t)fields_len));
  if (closed) return closed_error();
  if (rc != 0 && dora_last_error_code() == DORA_E_INVALID_ARGUMENT) return last_error(); /* fields that are not a JSON object */
  return PyBool_FromLong(rc == 0);
}

static PyMethodDef context_methods[] = {
    {"next_event", (PyCFunction)context_next_event, METH_O, "next_event(timeout_ms) -> the next event dict, or None (timeout or end of stream)."},
    {"stream_ended", (PyCFunction)context_stream_ended, METH_NOARGS, "True once the event stream has ended."},
    {"send_arrow", (PyCFunction)(void (*)(void))context_send_arrow, METH_FASTCALL, "send_arrow(output_id, array, metadata): sends an __arrow_c_array__ object."},
    {"send_bytes", (PyCFunction)(void (*)(void))context_send_bytes, METH_FASTCALL, "send_bytes(output_id, data, metadata): sends bytes as uint8."},
    {"send_raw", (PyCFunction)(void (*)(void))context_send_raw, METH_FASTCALL, "send_raw(output_id, length, fill, metadata): fill(memoryview) writes the sample in place; sent as uint8."},
    {"log", (PyCFunction)(void (*)(void))context_log, METH_FASTCALL, "log(level, message[, target, fields_json]) -> whether the record was taken."},
    {"close", (PyCFunction)context_close, METH_NOARGS, "Closes the outputs and leaves the dataflow; idempotent."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef context_getset[] = {
    {"closed", (getter)context_closed, NULL, "True once close() was called.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot context_slots[] = {
    {Py_tp_doc, "A node's connection to its dataflow: Context(config=None) joins it, with the given configuration JSON or DORA_NODE_CONFIG's."},
    {Py_tp_new, context_new},
    {Py_tp_dealloc, context_dealloc},
    {Py_tp_methods, context_methods},
    {Py_tp_getset, context_getset},
    {0, NULL},
};

static PyType_Spec context_spec = {"dora._native.Context", sizeof(ContextObject), 0, Py_TPFLAGS_DEFAULT, context_slots};

/* ---- module functions ----------------------------------------------------------------- */

/* configure(to_datetime, timestamp_ns, import_array): see their declaration above. */
static PyObject *configure(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
  (void)self;
  if (nargs != 3) return PyErr_SetString(PyExc_TypeError, "configure() takes 3 arguments"), NULL;
  PyObject *old[] = {to_datetime, timestamp_ns, import_array};
  to_datetime = Py_NewRef(args[0]);
  timestamp_ns = Py_NewRef(args[1]);
  import_array = Py_NewRef(args[2]);
  for (int i = 0; i < 3; i++) Py_XDECREF(old[i]);
  Py_RETURN_NONE;
}

/* metadata_roundtrip(parameters) -> the parameters through the core's metadata map and back
 * (what a receiver sees, less the message timestamp). For the tests. */
static PyObject *metadata_roundtrip(PyObject *self, PyObject *params) {
  (void)self;
  DoraMetadata *m = metadata_from_dict(params);
  if (!m) return NULL;
  PyObject *dict = metadata_to_dict(m);
  dora_metadata_free(m);
  return dict;
}

/* decode_frames(frames) -> the event dict a node makes of these ZeroMQ frames, or None
 * (end of stream); the DoraError of the core's code (MalformedMessageError, a RuntimeError) with its reason when it refuses them. For the
 * golden-vector tests. */
static PyObject *decode_frames(PyObject *self, PyObject *frames_obj) {
  (void)self;
  PyObject *seq = PySequence_Tuple(frames_obj);
  if (!seq) return NULL;
  Py_ssize_t n = PyTuple_Size(seq);
  if (n > 8) {
    Py_DECREF(seq);
    return PyErr_SetString(PyExc_ValueError, "at most 8 frames"), NULL;
  }
  const uint8_t *frames[8];
  size_t lens[8];
  for (Py_ssize_t i = 0; i < n; i++) {
    char *data;
    Py_ssize_t len;
    if (PyBytes_AsStringAndSize(PyTuple_GetItem(seq, i), &data, &len) < 0) {
      Py_DECREF(seq);
      return NULL;
    }
    frames[i] = (const uint8_t *)data;
    lens[i] = (size_t)len;
  }
  DoraEvent *event = NULL;
  bool eos = false;
  int rc = dora__decode_frames(frames, lens, (size_t)n, &event, &eos);
  Py_DECREF(seq);
  if (rc != 0) return last_error();
  if (!event) Py_RETURN_NONE;
  PyObject *dict = event_dict(event);
  free_dora_event(event);
  return dict;
}

/* encode_inline(array, timestamp, seq) -> [header, payload] (payload only when not empty):
 * the frames an inline data message carries for an __arrow_c_array__ object, without
 * parameters. For the golden-vector tests. */
static PyObject *encode_inline(PyObject *self, PyObject *args) {
  (void)self;
  PyObject *data;
  unsigned long long timestamp, seq_no;
  if (!PyArg_ParseTuple(args, "OKK", &data, &timestamp, &seq_no)) return NULL;
  struct ArrowArray *array;
  struct ArrowSchema *schema;
  PyObject *capsules = arrow_capsules(data, &array, &schema);
  if (!capsules) return NULL;
  uint8_t *header = NULL, *payload = NULL;
  size_t header_len = 0, payload_len = 0;
  int rc = dora__encode_inline(array, schema, NULL, timestamp, seq_no, &header, &header_len, &payload, &payload_len);
  Py_DECREF(capsules);
  if (rc != 0) return last_error();
  PyObject *frames = payload_len ? Py_BuildValue("[y#y#]", header, (Py_ssize_t)header_len, payload, (Py_ssize_t)payload_len)
                                 : Py_BuildValue("[y#]", header, (Py_ssize_t)header_len);
  free(header);
  free(payload);
  return frames;
}

/* dynamic_config(node_id, dataflow=None) -> the configuration (JSON text) of dynamic node
 * node_id, from the daemon of the running dataflow that declares it. */
static PyObject *dynamic_config(PyObject *self, PyObject *args) {
  (void)self;
  const char *node_id, *dataflow = NULL;
  if (!PyArg_ParseTuple(args, "s|z:dynamic_config", &node_id, &dataflow)) return NULL;
  size_t capacity = 1 << 16;
  for (int attempt = 0; attempt < 2; attempt++) {
    char *out = malloc(capacity);
    if (!out) return PyErr_NoMemory();
    int64_t len;
    Py_BEGIN_ALLOW_THREADS
    len = dora_dynamic_config(node_id, dataflow, out, capacity);
    Py_END_ALLOW_THREADS
    if (len < 0) {
      free(out);
      return core_error("");
    }
    if ((size_t)len < capacity) {
      PyObject *text = PyUnicode_DecodeUTF8(out, (Py_ssize_t)len, "strict");
      free(out);
      return text;
    }
    free(out);
    capacity = (size_t)len + 1; /* larger than guessed: ask again */
  }
  return raise_code(DORA_E_CONFIG, "the dynamic node's configuration kept growing");
}

static PyMethodDef methods[] = {
    {"dynamic_config", dynamic_config, METH_VARARGS,
     "dynamic_config(node_id, dataflow=None) -> the configuration (JSON) of a dynamic node, from the daemon of the running dataflow that declares it."},
    {"configure", (PyCFunction)(void (*)(void))configure, METH_FASTCALL,
     "configure(to_datetime, timestamp_ns, import_array): timestamps to datetimes and back, and the Arrow importer."},
    {"metadata_roundtrip", metadata_roundtrip, METH_O, "Parameters through the core's metadata map and back (tests)."},
    {"decode_frames", decode_frames, METH_O, "The event dict a node makes of ZeroMQ frames (tests)."},
    {"encode_inline", encode_inline, METH_VARARGS, "The frames of an inline data message for an Arrow array (tests)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "dora._native", "The native core of dora-ts: libdora_node_api and its Python binding.", -1, methods,
                                    NULL, NULL, NULL, NULL};

static int intern(PyObject **slot, const char *text) { return (*slot = PyUnicode_InternFromString(text)) ? 0 : -1; }

PyMODINIT_FUNC PyInit__native(void) {
  static const char *const types[] = DORA_EVENT_TYPE_NAMES; /* protocol/facts.json */
  if (intern(&s_type, "type") || intern(&s_id, "id") || intern(&s_kind, "kind") || intern(&s_value, "value") || intern(&s_metadata, "metadata") ||
      intern(&s_error, "error") || intern(&s_timestamp, "timestamp") || intern(&s_dora, "dora") || intern(&s_INPUT, types[DoraEventType_Input]) ||
      intern(&s_INPUT_CLOSED, types[DoraEventType_InputClosed]) || intern(&s_STOP, types[DoraEventType_Stop]) ||
      intern(&s_ERROR, types[DoraEventType_Error]) || intern(&s_UNKNOWN, types[DoraEventType_Unknown]) ||
      intern(&s_INPUT_RECOVERED, types[DoraEventType_InputRecovered]) || intern(&s_NODE_RESTARTED, types[DoraEventType_NodeRestarted]) ||
      intern(&s_NODE_FAILED, types[DoraEventType_NodeFailed]) || intern(&s_MANUAL, DORA_STOP_MANUAL) ||
      intern(&s_empty, "") || intern(&s_arrow_c_array, "__arrow_c_array__"))
    return NULL;
  /* the error classes: dora/_facts.py, generated with the catalogue (it imports nothing of dora's) */
  PyObject *facts = PyImport_ImportModule("dora._facts");
  if (!facts) return NULL;
  make_error = PyObject_GetAttrString(facts, "make_error");
  Py_DECREF(facts);
  if (!make_error) return NULL;
  if (!(ArrowExportType = PyType_FromSpec(&arrow_export_spec))) return NULL;
  DORA_DISALLOW_INSTANTIATION(ArrowExportType);
  PyObject *context_type = PyType_FromSpec(&context_spec);
  if (!context_type) return NULL;
  PyObject *m = PyModule_Create(&module);
  int added = m && PyModule_AddObjectRef(m, "Context", context_type) == 0 && PyModule_AddObjectRef(m, "ArrowExport", ArrowExportType) == 0;
  Py_DECREF(context_type);
  if (!added) {
    Py_XDECREF(m);
    return NULL;
  }
  return m;
}
