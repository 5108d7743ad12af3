"""The network service (Neutron v2.0): API, IPAM, agents and the Linux data plane."""
