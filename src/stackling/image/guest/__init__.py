"""The tiny bootable guest image (``stackling image build-tiny``): a Debian kernel plus a
busybox initramfs that does DHCP, reads OpenStack metadata (config drive or 169.254.169.254),
installs the public keys, runs a user-data script and prints console markers."""
