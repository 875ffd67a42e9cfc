# One way to turn .proto files into a library, for every protocol edgefd speaks (the kubelet's
# device-plugin, DRA, plugin-registration and PodResources APIs, NRI and ttrpc, the pipeline's
# stage service).
#
#   edgefd_proto_library(<target>
#     PROTO_DIR <dir>            the import root; each file is <dir>/<name>.proto
#     PROTOS <name>...           names relative to PROTO_DIR, without .proto ("v1beta1/api")
#     [LITE]                     link protobuf-lite (the files say optimize_for = LITE_RUNTIME)
#     [GRPC <grpc++ target>]     also generate gRPC stubs and link that gRPC library
#     [COMMENT <what>])          said in the build log
#
# Sources go to <current binary dir>/gen and are included as "<name>.pb.h" /
# "<name>.grpc.pb.h". Generated code is built without our -Werror (no edgefd_target_defaults).
function(edgefd_proto_library target)
  cmake_parse_arguments(ARG "LITE" "PROTO_DIR;GRPC;COMMENT" "PROTOS" ${ARGN})
  if(NOT ARG_PROTO_DIR OR NOT ARG_PROTOS)
    message(FATAL_ERROR "edgefd_proto_library(${target}): PROTO_DIR and PROTOS are required")
  endif()
  set(gen ${CMAKE_CURRENT_BINARY_DIR}/gen)
  set(plugin_args)
  if(ARG_GRPC)
    set(plugin_args --grpc_out=${gen} --plugin=protoc-gen-grpc=${GRPC_CPP_PLUGIN})
  endif()
  set(sources)
  foreach(proto IN LISTS ARG_PROTOS)
    set(out ${gen}/${proto}.pb.h ${gen}/${proto}.pb.cc)
    if(ARG_GRPC)
      list(APPEND out ${gen}/${proto}.grpc.pb.h ${gen}/${proto}.grpc.pb.cc)
    endif()
    add_custom_command(OUTPUT ${out}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${gen}
      COMMAND protobuf::protoc -I ${ARG_PROTO_DIR} --cpp_out=${gen} ${plugin_args}
              ${ARG_PROTO_DIR}/${proto}.proto
      DEPENDS ${ARG_PROTO_DIR}/${proto}.proto
      COMMENT "protoc ${proto}.proto (${ARG_COMMENT})")
    list(APPEND sources ${out})
  endforeach()
  add_library(${target} STATIC ${sources})
  target_include_directories(${target} PUBLIC ${gen})
  target_compile_features(${target} PUBLIC cxx_std_20)
  if(ARG_LITE)
    target_link_libraries(${target} PUBLIC protobuf::libprotobuf-lite)
  else()
    target_link_libraries(${target} PUBLIC protobuf::libprotobuf)
  endif()
  if(ARG_GRPC)
    target_link_libraries(${target} PUBLIC ${ARG_GRPC})
    if(ARG_LITE)
      target_compile_definitions(${target} PUBLIC GRPC_USE_PROTO_LITE=1)
    endif()
  endif()
endfunction()
