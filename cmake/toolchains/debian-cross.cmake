# Shared part of the Debian cross toolchain files (aarch64-linux-gnu.cmake,
# arm-linux-gnueabihf.cmake): Debian's cross compilers (crossbuild-essential-<arch>) against a
# sysroot of the target's Debian 12 -dev packages (scripts/debian-root.sh sysroot <arch>);
# programs that run at build time (protoc, grpc_cpp_plugin, dtc) come from the build machine,
# and test binaries run under qemu-user.
#
# The sysroot: -DEDGEFD_SYSROOT=DIR, else $EDGEFD_SYSROOT, else $EDGEFD_CACHE/sysroot-<arch>
# (EDGEFD_CACHE defaults to ~/.cache/edgefd, as in scripts/debian-root.sh).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_C_COMPILER ${EDGEFD_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${EDGEFD_TRIPLE}-g++)
set(CMAKE_LIBRARY_ARCHITECTURE ${EDGEFD_TRIPLE})

if(NOT EDGEFD_SYSROOT)
  if(DEFINED ENV{EDGEFD_SYSROOT})
    set(EDGEFD_SYSROOT $ENV{EDGEFD_SYSROOT})
  elseif(DEFINED ENV{EDGEFD_CACHE})
    set(EDGEFD_SYSROOT $ENV{EDGEFD_CACHE}/sysroot-${EDGEFD_DEB_ARCH})
  else()
    set(EDGEFD_SYSROOT $ENV{HOME}/.cache/edgefd/sysroot-${EDGEFD_DEB_ARCH})
  endif()
endif()
if(NOT EXISTS ${EDGEFD_SYSROOT}/usr/include)
  message(FATAL_ERROR "no ${EDGEFD_DEB_ARCH} sysroot at ${EDGEFD_SYSROOT}: "
                      "make it with `bash scripts/debian-root.sh sysroot ${EDGEFD_DEB_ARCH}`")
endif()
# try_compile projects re-read this file: hand them the same settings.
set(ENV{EDGEFD_SYSROOT} ${EDGEFD_SYSROOT})
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES EDGEFD_SYSROOT EDGEFD_RUN_FROM_SYSROOT)

set(CMAKE_SYSROOT ${EDGEFD_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(ENV{PKG_CONFIG_SYSROOT_DIR} ${EDGEFD_SYSROOT})
set(ENV{PKG_CONFIG_LIBDIR}
    ${EDGEFD_SYSROOT}/usr/lib/${EDGEFD_TRIPLE}/pkgconfig:${EDGEFD_SYSROOT}/usr/share/pkgconfig)

# Test builds (scripts/test.sh) run on the build machine under qemu-user. With
# EDGEFD_RUN_FROM_SYSROOT=ON their executables name the sysroot's loader and library directory
# by absolute path, so they run as they are (also when a test starts one: binfmt_misc), with
# no qemu -L prefix: that prefix would re-root every path the program opens, and umockdev's
# preload library, which recognises a descriptor of "/" by its real path, would then miss it.
# Never for binaries that ship (the image builds without it).
if(EDGEFD_RUN_FROM_SYSROOT)
  set(_libdir ${EDGEFD_SYSROOT}/usr/lib/${EDGEFD_TRIPLE})
  set(CMAKE_EXE_LINKER_FLAGS_INIT
      "-Wl,--dynamic-linker=${_libdir}/${EDGEFD_LOADER} -Wl,--disable-new-dtags -Wl,-rpath,${_libdir}")
endif()
# gtest_discover_tests and ctest start the test binaries through this.
if(EDGEFD_QEMU AND EDGEFD_RUN_FROM_SYSROOT)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${EDGEFD_QEMU})
elseif(EDGEFD_QEMU)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${EDGEFD_QEMU};-L;${EDGEFD_SYSROOT})
endif()
