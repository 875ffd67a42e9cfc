# Common settings for every target built from our own sources: C++20, a warning-free build
# (-Werror applies to our code only, never to dependencies), and unity builds
# (EDGEFD_UNITY_BUILD): a target's sources compiled in batches of 8, each batch parsing
# gRPC, protobuf, nlohmann-json, spdlog and GoogleTest once instead of once per file. The cold
# CI run spent most of its time compiling; a source's anonymous namespace is then shared with
# its batch, so two files of one target must not define the same internal name.
function(edgefd_target_defaults target)
  target_compile_features(${target} PUBLIC cxx_std_20)
  set_target_properties(${target} PROPERTIES CXX_EXTENSIONS OFF)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Werror)
  set_target_properties(${target} PROPERTIES UNITY_BUILD ${EDGEFD_UNITY_BUILD})
  if(EDGEFD_UNITY_BUILD AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # In a batch a source is no longer the main file, and GCC takes a class of it holding a
    # type of its anonymous namespace for one in a header; within one file it is not.
    target_compile_options(${target} PRIVATE -Wno-subobject-linkage)
  endif()
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    # GCC 12 reports -Wrestrict false positives inside std::string operator+ at -O3
    # (GCC bug 105329); they are not in our code.
    target_compile_options(${target} PRIVATE -Wno-restrict)
  endif()
endfunction()
