"""The stack's Kafka: cluster ids the storage tool accepts."""

import base64

from tradelake.stack.kafka import new_cluster_id


def test_cluster_ids_never_start_with_a_dash_and_carry_16_bytes():
    # one URL-safe base64 id in 64 starts with '-', which kafka-storage's parser takes for an
    # option ("argument --cluster-id/-t: expected one argument": a fresh stack failed to start)
    ids = [new_cluster_id() for _ in range(5000)]
    assert not [i for i in ids if i.startswith("-")]
    assert {len(i) for i in ids} == {22}
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)
    assert len(set(ids)) == len(ids)
