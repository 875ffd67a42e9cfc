# arm64 (Raspberry Pi 3/4/5 64-bit, Jetson, Rockchip): see debian-cross.cmake.
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(EDGEFD_TRIPLE aarch64-linux-gnu)
set(EDGEFD_DEB_ARCH arm64)
set(EDGEFD_QEMU qemu-aarch64-static)
set(EDGEFD_LOADER ld-linux-aarch64.so.1)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
