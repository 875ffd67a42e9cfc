# Common settings for every target built from our own sources: C++20 and a
# warning-free build (-Werror applies to our code only, never to dependencies).
function(edgefd_target_defaults target)
  target_compile_features(${target} PUBLIC cxx_std_20)
  set_target_properties(${target} PROPERTIES CXX_EXTENSIONS OFF)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Werror)
endfunction()
