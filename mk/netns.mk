# netns tier (tests/fixtures/netns.py, wggo.py, topology.py, packets.py): tools its tests run inside namespaces.
APT_PACKAGES += iputils-ping
