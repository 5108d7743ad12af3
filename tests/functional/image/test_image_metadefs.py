"""Metadata definitions: namespaces, objects, properties, tags, resource types."""

from __future__ import annotations

from tests.functional.image.conftest import ImageCloud

NS = "/image/v2/metadefs/namespaces"


async def test_namespace_lifecycle(image_cloud: ImageCloud) -> None:
    c = image_cloud
    h = await c.headers()
    r = await c.client.get("/image/v2/metadefs/resource_types", headers=await c.headers("demo"))
    names = [t["name"] for t in r.json()["resource_types"]]
    assert "OS::Glance::Image" in names and "OS::Nova::Flavor" in names
    body = {"namespace": "ns1", "display_name": "NS one", "description": "d",
            "visibility": "public", "protected": True,
            "resource_type_associations": [{"name": "OS::Glance::Image", "prefix": "hw_"}],
            "properties": {"cpu": {"type": "integer", "title": "CPUs", "minimum": 1}},
            "objects": [{"name": "obj1", "properties": {
                "p": {"type": "string", "title": "P"}}}],
            "tags": [{"name": "t1"}]}
    r = await c.client.post(NS, headers=h, json=body)
    assert r.status_code == 201, r.text
    ns = r.json()
    assert ns["namespace"] == "ns1" and ns["self"] == "/v2/metadefs/namespaces/ns1"
    assert ns["properties"]["cpu"]["title"] == "CPUs"
    assert (await c.client.post(NS, headers=h, json={"namespace": "ns1"})).status_code == 409
    # demo sees the public namespace, cannot change it
    demo = await c.headers("demo")
    r = await c.client.get(f"{NS}/ns1", headers=demo)
    assert r.status_code == 200
    shown = r.json()
    assert shown["resource_type_associations"][0]["name"] == "OS::Glance::Image"
    assert [o["name"] for o in shown["objects"]] == ["obj1"]
    assert shown["tags"] == [{"name": "t1"}]
    assert (await c.client.post(NS, headers=demo, json={"namespace": "x"})).status_code == 403
    assert (await c.client.delete(f"{NS}/ns1", headers=demo)).status_code == 403
    r = await c.client.get(NS, headers=demo)
    assert [n["namespace"] for n in r.json()["namespaces"]] == ["ns1"]
    assert r.json()["schema"] == "/v2/schemas/metadefs/namespaces"
    r = await c.client.get(f"{NS}?resource_types=OS::Nova::Flavor", headers=demo)
    assert r.json()["namespaces"] == []
    # protected: no delete until unprotected
    assert (await c.client.delete(f"{NS}/ns1", headers=h)).status_code == 403
    r = await c.client.put(f"{NS}/ns1", headers=h, json={
        "namespace": "ns1", "visibility": "private", "protected": False})
    assert r.status_code == 200 and r.json()["visibility"] == "private"
    assert (await c.client.get(f"{NS}/ns1", headers=demo)).status_code == 404
    assert (await c.client.delete(f"{NS}/ns1", headers=h)).status_code == 204
    assert (await c.client.get(f"{NS}/ns1", headers=h)).status_code == 404


async def test_objects_properties_tags(image_cloud: ImageCloud) -> None:
    c = image_cloud
    h = await c.headers()
    await c.client.post(NS, headers=h, json={"namespace": "ns2"})
    base = f"{NS}/ns2"
    # objects
    r = await c.client.post(f"{base}/objects", headers=h, json={"name": "o1"})
    assert r.status_code == 201 and r.json()["self"] == "/v2/metadefs/namespaces/ns2/objects/o1"
    r = await c.client.put(f"{base}/objects/o1", headers=h, json={"name": "o2"})
    assert r.status_code == 200 and r.json()["name"] == "o2"
    assert (await c.client.get(f"{base}/objects/o2", headers=h)).status_code == 200
    r = await c.client.get(f"{base}/objects", headers=h)
    assert [o["name"] for o in r.json()["objects"]] == ["o2"]
    assert (await c.client.delete(f"{base}/objects/o2", headers=h)).status_code == 204
    assert (await c.client.get(f"{base}/objects/o2", headers=h)).status_code == 404
    # properties
    r = await c.client.post(f"{base}/properties", headers=h, json={
        "name": "hypervisor", "title": "Hypervisor", "type": "string",
        "enum": ["kvm", "qemu"]})
    assert r.status_code == 201 and r.json()["title"] == "Hypervisor"
    r = await c.client.put(f"{base}/properties/hypervisor", headers=h, json={
        "name": "hypervisor", "title": "HV", "type": "string"})
    assert r.json()["title"] == "HV"
    r = await c.client.get(f"{base}/properties", headers=h)
    assert list(r.json()["properties"]) == ["hypervisor"]
    assert (await c.client.delete(f"{base}/properties/hypervisor", headers=h)).status_code \
        == 204
    # tags
    r = await c.client.post(f"{base}/tags", headers=h,
                            json={"tags": [{"name": "a"}, {"name": "b"}]})
    assert r.status_code == 201 and [t["name"] for t in r.json()["tags"]] == ["a", "b"]
    assert (await c.client.post(f"{base}/tags/c", headers=h)).status_code == 201
    assert (await c.client.post(f"{base}/tags/c", headers=h)).status_code == 409
    r = await c.client.put(f"{base}/tags/c", headers=h, json={"name": "d"})
    assert r.json()["name"] == "d"
    r = await c.client.get(f"{base}/tags", headers=h)
    assert [t["name"] for t in r.json()["tags"]] == ["a", "b", "d"]
    assert (await c.client.delete(f"{base}/tags/d", headers=h)).status_code == 204
    assert (await c.client.delete(f"{base}/tags", headers=h)).status_code == 204
    assert (await c.client.get(f"{base}/tags", headers=h)).json()["tags"] == []
    # resource type associations
    r = await c.client.post(f"{base}/resource_types", headers=h,
                            json={"name": "OS::Nova::Flavor", "prefix": "hw:"})
    assert r.status_code == 201 and r.json()["prefix"] == "hw:"
    r = await c.client.get(f"{base}/resource_types", headers=h)
    assert [a["name"] for a in r.json()["resource_type_associations"]] == ["OS::Nova::Flavor"]
    assert (await c.client.delete(f"{base}/resource_types/OS::Nova::Flavor", headers=h)).\
        status_code == 204
    assert (await c.client.delete(f"{base}/resource_types/OS::Nova::Flavor", headers=h)).\
        status_code == 404
