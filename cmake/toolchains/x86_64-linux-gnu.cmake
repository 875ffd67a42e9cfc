# amd64 against a Debian 12 amd64 sysroot, as the image's build stage compiles every target
# (a native build needs no toolchain file); see debian-cross.cmake.
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(EDGEFD_TRIPLE x86_64-linux-gnu)
set(EDGEFD_DEB_ARCH amd64)
set(EDGEFD_QEMU "")
set(EDGEFD_LOADER ld-linux-x86-64.so.2)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
