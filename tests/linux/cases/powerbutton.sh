#!/bin/sh
# powerbutton.sh: Linux finds rackvm's ACPI power button (a Generic Event
# Device notifying a PNP0C0C button, bound by the button driver as an
# input device), says "# power button ready", then waits for one input
# event from it and checks it is KEY_POWER pressed.  The host presses the
# button (rackvm ctl --socket SOCK shutdown) once it sees the ready line; the
# case then ends and the guest powers off as a real one would.
. /lib/rackvm.sh

dev=
for d in /sys/class/input/event*; do
	[ -e "$d/device/name" ] || continue
	if [ "$(cat "$d/device/name")" = "Power Button" ]; then
		dev=/dev/input/${d##*/}
	fi
done
if [ -z "$dev" ]; then
	fail power_button_found "no input device named 'Power Button': $(cat /sys/class/input/*/device/name 2> /dev/null | tr '\n' '|')"
	exit 1
fi
ok power_button_found
echo "# power button ready"
# struct input_event on x86-64: 16 bytes of time, then u16 type, u16 code,
# s32 value; the first event of a press is EV_KEY (1) KEY_POWER (116) 1
event=$(dd if="$dev" bs=24 count=1 2> /dev/null | od -An -tu2 -j16 -N6 | tr -s ' ')
if [ "$event" = " 1 116 1" ]; then
	ok power_button_pressed
else
	fail power_button_pressed "first event type/code/value: '$event'"
fi
exit 0
