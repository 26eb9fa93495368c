/*
 * dora._operator: C operators in the Python runtime (dora.runtime), a CPython extension
 * module compiled with the operator host (bindings/c/operator: host.c, api.c).
 *
 *   SharedLibraryOperator(path, send)  opens lib<name>.so at `path` and calls its
 *       dora_init_operator. `send(output_id: str, data: bytes)` is called for each output
 *       it sends; an exception there becomes the error dora_send_operator_output returns.
 *   .on_input(input_id, data) / .on_input_closed(input_id) / .on_stop() / .on_error(message)
 *       hand it one event (`data`: any object of the buffer protocol, read in place) and
 *       return its status: 0 CONTINUE, 1 STOP, 2 STOP_ALL.
 *   .drop()  calls dora_drop_operator (once; also when the object is collected).
 * Failures raise dora.NodeError with the operator's message.
 *
 * The GIL is released while the operator runs; `send` takes it again, from whichever
 * thread the operator sends. At import, the module makes its copy of the operator-facing
 * functions (dora_read_input_id, ...) global, so that operators linked without
 * libdora_operator_api_c find them, as they do in the C runtime.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h> /* setup.py defines Py_LIMITED_API (3.11's stable ABI) when built by 3.11+ */
#include "pycompat.h" /* 3.10's API on 3.9 */
#include <dlfcn.h>
#include <stdio.h>

#include "host.h"
#include "operator_types.h"

static PyObject *node_error; /* dora._facts.NodeError */

typedef struct {
  PyObject_HEAD
  DoraOperatorHost *host;
  PyObject *send;
} OperatorObject;

static PyObject *raise_node_error(const char *message) {
  PyErr_SetString(node_error, message);
  return NULL;
}

/* The host's send function: calls the Python callable with the GIL. */
static int send_output(void *user, const char *output_id, const uint8_t *data, size_t len, char *error, size_t error_len) {
  OperatorObject *self = user;
  PyGILState_STATE gil = PyGILState_Ensure();
  PyObject *result = PyObject_CallFunction(self->send, "sy#", output_id, (const char *)data, (Py_ssize_t)len);
  int rc = 0;
  if (!result) {
    rc = -1;
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyObject *text = value ? PyObject_Str(value) : NULL;
    const char *utf8 = text ? PyUnicode_AsUTF8AndSize(text, NULL) : NULL;
    PyObject *name = type ? PyObject_GetAttrString(type, "__name__") : NULL;
    const char *type_name = name ? PyUnicode_AsUTF8AndSize(name, NULL) : NULL;
    snprintf(error, error_len, "%s: %s", type_name ? type_name : "error", utf8 ? utf8 : "");
    PyErr_Clear();
    Py_XDECREF(name);
    Py_XDECREF(text);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
  }
  Py_XDECREF(result);
  PyGILState_Release(gil);
  return rc;
}

static int operator_init(OperatorObject *self, PyObject *args, PyObject *kwargs) {
  static char *keywords[] = {"path", "send", NULL};
  PyObject *path;
  PyObject *send;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&O:SharedLibraryOperator", keywords, PyUnicode_FSConverter, &path, &send)) return -1;
  if (!PyCallable_Check(send)) {
    Py_DECREF(path);
    PyErr_SetString(PyExc_TypeError, "send must be callable");
    return -1;
  }
  if (self->host) {
    Py_DECREF(path);
    PyErr_SetString(PyExc_RuntimeError, "the operator is already loaded");
    return -1;
  }
  PyObject *old = self->send;
  self->send = Py_NewRef(send);
  Py_XDECREF(old);
  char error[1024] = "";
  DoraOperatorHost *host;
  const char *file = PyBytes_AsString(path);
  Py_BEGIN_ALLOW_THREADS
  host = dora_operator_load(file, send_output, self, error, sizeof error);
  Py_END_ALLOW_THREADS
  Py_DECREF(path);
  if (!host) return raise_node_error(error), -1;
  self->host = host;
  return 0;
}

static PyObject *status(OperatorObject *self, int rc, const char *error) {
  (void)self;
  if (rc < 0) return raise_node_error(error);
  return PyLong_FromLong(rc);
}

static PyObject *dropped(void) { return raise_node_error("the operator has been dropped"); }

static PyObject *operator_on_input(OperatorObject *self, PyObject *args) {
  const char *id;
  Py_buffer data;
  if (!PyArg_ParseTuple(args, "sy*:on_input", &id, &data)) return NULL;
  if (!self->host) return PyBuffer_Release(&data), dropped();
  char error[1024] = "";
  int rc;
  Py_BEGIN_ALLOW_THREADS
  rc = dora_operator_input(self->host, id, data.buf, (size_t)data.len, error, sizeof error);
  Py_END_ALLOW_THREADS
  PyBuffer_Release(&data);
  return status(self, rc, error);
}

static PyObject *operator_on_input_closed(OperatorObject *self, PyObject *args) {
  const char *id;
  if (!PyArg_ParseTuple(args, "s:on_input_closed", &id)) return NULL;
  if (!self->host) return dropped();
  char error[1024] = "";
  int rc;
  Py_BEGIN_ALLOW_THREADS
  rc = dora_operator_input_closed(self->host, id, error, sizeof error);
  Py_END_ALLOW_THREADS
  return status(self, rc, error);
}

static PyObject *operator_on_stop(OperatorObject *self, PyObject *unused) {
  (void)unused;
  if (!self->host) return dropped();
  char error[1024] = "";
  int rc;
  Py_BEGIN_ALLOW_THREADS
  rc = dora_operator_stop(self->host, error, sizeof error);
  Py_END_ALLOW_THREADS
  return status(self, rc, error);
}

static PyObject *operator_on_error(OperatorObject *self, PyObject *args) {
  const char *message;
  if (!PyArg_ParseTuple(args, "s:on_error", &message)) return NULL;
  if (!self->host) return dropped();
  char error[1024] = "";
  int rc;
  Py_BEGIN_ALLOW_THREADS
  rc = dora_operator_error(self->host, message, error, sizeof error);
  Py_END_ALLOW_THREADS
  return status(self, rc, error);
}

static PyObject *operator_drop(OperatorObject *self, PyObject *unused) {
  (void)unused;
  DoraOperatorHost *host = self->host;
  self->host = NULL;
  if (!host) Py_RETURN_NONE;
  char error[1024] = "";
  int rc;
  Py_BEGIN_ALLOW_THREADS
  rc = dora_operator_drop(host, error, sizeof error);
  Py_END_ALLOW_THREADS
  if (rc < 0) return raise_node_error(error);
  Py_RETURN_NONE;
}

static void operator_dealloc(OperatorObject *self) {
  if (self->host) {
    char error[1024];
    if (dora_operator_drop(self->host, error, sizeof error) < 0) fprintf(stderr, "dora: %s\n", error);
    self->host = NULL;
  }
  Py_XDECREF(self->send);
  PyTypeObject *type = Py_TYPE((PyObject *)self); /* a heap type: its instances hold a reference to it */
  ((freefunc)PyType_GetSlot(type, Py_tp_free))((PyObject *)self);
  Py_DECREF(type);
}

static PyMethodDef operator_methods[] = {
    {"on_input", (PyCFunction)operator_on_input, METH_VARARGS, "on_input(input_id, data) -> status"},
    {"on_input_closed", (PyCFunction)operator_on_input_closed, METH_VARARGS, "on_input_closed(input_id) -> status"},
    {"on_stop", (PyCFunction)operator_on_stop, METH_NOARGS, "on_stop() -> status"},
    {"on_error", (PyCFunction)operator_on_error, METH_VARARGS, "on_error(message) -> status"},
    {"drop", (PyCFunction)operator_drop, METH_NOARGS, "drop(): calls dora_drop_operator once"},
    {NULL, NULL, 0, NULL},
};

/* a heap type (PyType_FromSpec): the stable ABI has no static ones */
static PyType_Slot operator_slots[] = {
    {Py_tp_doc, "A C operator (a shared library with dora_init_operator, dora_on_event, dora_drop_operator)."},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_init, operator_init},
    {Py_tp_dealloc, operator_dealloc},
    {Py_tp_methods, operator_methods},
    {0, NULL},
};

static PyType_Spec operator_spec = {"dora._operator.SharedLibraryOperator", sizeof(OperatorObject), 0, Py_TPFLAGS_DEFAULT, operator_slots};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "dora._operator", "C operators in the Python runtime.", -1, NULL, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__operator(void) {
  /* Python opened this module RTLD_LOCAL: open it again, by its own path, RTLD_GLOBAL. */
  Dl_info self;
  void *symbol = (void *)(uintptr_t)&dora_read_input_id;
  if (dladdr(symbol, &self) && self.dli_fname) dlopen(self.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
  PyObject *facts = PyImport_ImportModule("dora._facts");
  if (!facts) return NULL;
  node_error = PyObject_GetAttrString(facts, "NodeError");
  Py_DECREF(facts);
  if (!node_error) return NULL;
  PyObject *type = PyType_FromSpec(&operator_spec);
  if (!type) return NULL;
  PyObject *m = PyModule_Create(&module);
  int added = m && PyModule_AddObjectRef(m, "SharedLibraryOperator", type) == 0;
  Py_DECREF(type);
  if (!added) {
    Py_XDECREF(m);
    return NULL;
  }
  return m;
}
