# armhf (32-bit Raspberry Pi OS, ODROID XU4/HC1): ARMv7-A with VFPv3-D16, Debian's baseline;
# see debian-cross.cmake.
set(CMAKE_SYSTEM_PROCESSOR armv7l)
set(EDGEFD_TRIPLE arm-linux-gnueabihf)
set(EDGEFD_DEB_ARCH armhf)
set(EDGEFD_QEMU qemu-arm-static)
set(EDGEFD_LOADER ld-linux-armhf.so.3)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
