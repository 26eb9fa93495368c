/*
 * What the binding uses of CPython 3.10's C API, for 3.9.
 *
 * 3.11+ builds against the stable ABI of 3.11 (one abi3 wheel); 3.9 and 3.10 build against
 * their own full API, a wheel each (setup.py): the limited API before 3.11 has no buffer
 * protocol, which send_bytes and the operator host use to read bytes-like objects without
 * a copy. Everything here exists from 3.10 on, so only 3.9 compiles it.
 */
#ifndef DORA_PYCOMPAT_H
#define DORA_PYCOMPAT_H

#include <Python.h>

#if PY_VERSION_HEX < 0x030A0000
static inline PyObject *Py_NewRef(PyObject *obj) {
  Py_INCREF(obj);
  return obj;
}

static inline PyObject *Py_XNewRef(PyObject *obj) {
  Py_XINCREF(obj);
  return obj;
}

/* Like 3.10's: does not steal `value` (PyModule_AddObject steals it only on success). */
static inline int PyModule_AddObjectRef(PyObject *module, const char *name, PyObject *value) {
  if (!value) {
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_SystemError, "PyModule_AddObjectRef() must be called with an exception raised if value is NULL");
    return -1;
  }
  Py_INCREF(value);
  if (PyModule_AddObject(module, name, value) < 0) {
    Py_DECREF(value);
    return -1;
  }
  return 0;
}

/* 3.9 has no such flag: a type made from a spec inherits object's tp_new, so
 * DORA_DISALLOW_INSTANTIATION clears it once the type is made (what the flag does in 3.10),
 * and calling the type raises TypeError("cannot create ... instances"). */
#define Py_TPFLAGS_DISALLOW_INSTANTIATION 0
#define DORA_DISALLOW_INSTANTIATION(type) (((PyTypeObject *)(type))->tp_new = NULL)
#else
#define DORA_DISALLOW_INSTANTIATION(type) ((void)(type))
#endif

#endif
