# find_package(dora-operator-api-c): dora's C operator API (operator_api.h, operator_types.h)
# and the archive an operator links, libdora_operator_api_c.a. Relocatable: paths are found
# from this file's place in <prefix>/lib/cmake/dora-operator-api-c/.
#
# Target: dora_operator_api_c (the name dora's build lines link), also as dora::operator_api_c.
get_filename_component(_dora_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
if(NOT TARGET dora::operator_api_c)
  add_library(dora::operator_api_c STATIC IMPORTED)
  set_target_properties(dora::operator_api_c PROPERTIES
    IMPORTED_LOCATION "${_dora_prefix}/lib/libdora_operator_api_c.a"
    INTERFACE_INCLUDE_DIRECTORIES "${_dora_prefix}/include")
  add_library(dora_operator_api_c INTERFACE IMPORTED)
  set_target_properties(dora_operator_api_c PROPERTIES INTERFACE_LINK_LIBRARIES dora::operator_api_c)
endif()
unset(_dora_prefix)
