"""The metadata a guest reads: the OpenStack and EC2 documents (:mod:`.content`), served by
the metadata service (:mod:`.app`) and written onto config drives by the QEMU driver."""
