"""Routers: a namespace ``qrouter-<id>`` with one interface per subnet (``qr-``) in that
network's bridge, a gateway (``qg-``) in the external network's bridge, and nftables NAT.

:func:`render_nat` is pure. NAT in the namespace's ``table ip stackling``:

* floating IPs: ``DNAT floating -> fixed`` on the way in, ``SNAT fixed -> floating`` on the
  way out through the gateway (the floating address is also put on ``qg-`` as a /32 so the
  router answers ARP for it);
* the gateway: everything else leaving through ``qg-`` is SNATed to the gateway address
  when ``enable_snat`` (Neutron's default), nothing otherwise;
* traffic between the router's own subnets is routed, never NATed.
"""

from __future__ import annotations

from stackling.network.dataplane.linuxbridge.names import gateway_if
from stackling.network.rpcapi import RouterState

NAT_TABLE = "stackling"


def render_nat(router: RouterState) -> str:
    lines = [f"table ip {NAT_TABLE}", f"delete table ip {NAT_TABLE}", f"table ip {NAT_TABLE} {{"]
    lines.append("  chain prerouting {")
    lines.append("    type nat hook prerouting priority dstnat; policy accept;")
    gw = router.gateway
    fips = sorted(router.floating_ips, key=lambda f: f.floating_ip_address) if gw else []
    for fip in fips:
        if ":" in fip.floating_ip_address:
            continue
        lines.append(f"    ip daddr {fip.floating_ip_address} dnat to {fip.fixed_ip_address}")
    lines.append("  }")
    lines.append("  chain output {")  # the router itself reaching a floating IP
    lines.append("    type nat hook output priority -100; policy accept;")
    for fip in fips:
        if ":" not in fip.floating_ip_address:
            lines.append(f"    ip daddr {fip.floating_ip_address} dnat to "
                         f"{fip.fixed_ip_address}")
    lines.append("  }")
    lines.append("  chain postrouting {")
    lines.append("    type nat hook postrouting priority srcnat; policy accept;")
    if gw is not None and ":" not in gw.ip_address:
        qg = gateway_if(gw.port_id)
        for fip in fips:
            if ":" not in fip.floating_ip_address:
                lines.append(f'    oifname "{qg}" ip saddr {fip.fixed_ip_address} '
                             f"snat to {fip.floating_ip_address}")
        if gw.enable_snat:
            lines.append(f'    oifname "{qg}" snat to {gw.ip_address}')
    lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"
