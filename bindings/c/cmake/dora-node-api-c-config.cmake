# find_package(dora-node-api-c) (or dora-node-api): the dora-ts node library, which is
# dora's C node API (node_api.h / dora_node_api.h). Relocatable: paths are found from
# this file's place in <prefix>/lib/cmake/dora-node-api-c/.
#
# Targets: dora::node_api_c (the shared library), dora::node_api_c_static (the static one,
# with libzmq), and dora_node_api_c, the name dora's build lines link.
get_filename_component(_dora_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
if(NOT TARGET dora::node_api_c)
  add_library(dora::node_api_c SHARED IMPORTED)
  set_target_properties(dora::node_api_c PROPERTIES
    IMPORTED_LOCATION "${_dora_prefix}/lib/libdora_node_api.so"
    IMPORTED_SONAME "libdora_node_api.so.0"
    INTERFACE_INCLUDE_DIRECTORIES "${_dora_prefix}/include")
  # the static library needs what the shared one links itself: libzmq, pthreads and, before
  # glibc 2.34, librt (shm_open)
  find_package(Threads REQUIRED)
  find_library(_dora_zmq NAMES zmq)
  add_library(dora::node_api_c_static STATIC IMPORTED)
  set_target_properties(dora::node_api_c_static PROPERTIES
    IMPORTED_LOCATION "${_dora_prefix}/lib/libdora_node_api.a"
    INTERFACE_INCLUDE_DIRECTORIES "${_dora_prefix}/include"
    INTERFACE_LINK_LIBRARIES "${_dora_zmq};Threads::Threads;rt")
  add_library(dora_node_api_c INTERFACE IMPORTED)
  set_target_properties(dora_node_api_c PROPERTIES INTERFACE_LINK_LIBRARIES dora::node_api_c)
endif()
unset(_dora_prefix)
