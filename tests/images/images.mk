# Test kernels for the boot loaders (included from the top Makefile).
#   make images    build/images/multiboot-test.elf
# A freestanding Multiboot v1 ELF32 kernel: no libc, only compiler
# headers (gcc-multilib is not needed for -c -m32 -ffreestanding).

IMAGES_DIR := $(BUILD)/images
MB_TEST_DIR := tests/images/multiboot
MB_TEST_ELF := $(IMAGES_DIR)/multiboot-test.elf
MB_TEST_OBJS := $(IMAGES_DIR)/multiboot/entry.o $(IMAGES_DIR)/multiboot/main.o
MB_TEST_CFLAGS := -m32 -march=i686 -ffreestanding -fno-pic -fno-pie \
                  -fno-stack-protector -fno-asynchronous-unwind-tables \
                  -mno-sse -mno-mmx -O2 -Wall -Wextra -Werror -std=gnu11

.PHONY: images
images: $(MB_TEST_ELF)

$(IMAGES_DIR)/multiboot/%.o: $(MB_TEST_DIR)/%.c
	@mkdir -p $(dir $@)
	$(CC) $(MB_TEST_CFLAGS) -c $< -o $@
$(IMAGES_DIR)/multiboot/%.o: $(MB_TEST_DIR)/%.S
	@mkdir -p $(dir $@)
	$(CC) -m32 -fno-pic -c $< -o $@
$(MB_TEST_ELF): $(MB_TEST_OBJS) $(MB_TEST_DIR)/kernel.ld
	$(LD) -m elf_i386 -nostdlib --no-warn-rwx-segments -T $(MB_TEST_DIR)/kernel.ld -o $@ $(MB_TEST_OBJS)
