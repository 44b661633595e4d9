# The bundled guest runtime: freestanding C and assembly, built with the
# host gcc into one PVH ELF image, $(GUEST_ELF).  Included by the top
# Makefile, which defines BUILD and GUEST_ELF; the top CFLAGS do not apply.
#
# -mgeneral-regs-only: exception and syscall handlers save general
#   registers only (ring 0 cannot use XSAVE on the target machines), so no
#   guest code may touch SSE/x87 state behind a workload's back.
# -fno-tree-loop-distribute-patterns: keeps gcc from turning the loops in
#   memcpy/memset (and the memtouch loops) into calls to themselves.

# gcc on purpose: the flags and the inline assembly are gcc's, whatever
# $(CC) is for the host build.
GUEST_CC := gcc
GUEST_OBJDIR := $(BUILD)/guest/obj

GUEST_CFLAGS := -std=gnu11 -O2 -g -m64 \
	-Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wno-missing-field-initializers \
	-ffreestanding -nostdlib -fno-pic -fno-pie -static -mcmodel=small \
	-mno-red-zone -mgeneral-regs-only -fno-stack-protector \
	-fno-asynchronous-unwind-tables -fno-unwind-tables \
	-fcf-protection=none -fno-tree-loop-distribute-patterns \
	-fno-omit-frame-pointer \
	-Iguest/include -Iinclude -MMD -MP
GUEST_LDFLAGS := -nostdlib -static -no-pie -Wl,-T,guest/linker.ld \
	-Wl,--build-id=none -Wl,-z,max-page-size=4096 -Wl,-z,noexecstack

GUEST_SRCS := $(sort $(wildcard guest/*.c guest/arch/*.S guest/arch/*.c \
	guest/drivers/*.c \
	guest/lib/*.c guest/workloads/*.c))
GUEST_OBJS := $(patsubst guest/%,$(GUEST_OBJDIR)/%.o,$(GUEST_SRCS))

$(GUEST_OBJDIR)/%.c.o: guest/%.c guest/guest.mk
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) -c $< -o $@

$(GUEST_OBJDIR)/%.S.o: guest/%.S guest/guest.mk
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) -c $< -o $@

$(GUEST_ELF): $(GUEST_OBJS) guest/linker.ld
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) $(GUEST_LDFLAGS) -o $@ $(GUEST_OBJS)

guest: $(GUEST_ELF)
