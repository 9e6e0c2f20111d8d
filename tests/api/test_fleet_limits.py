"""Issue 14 in a fleet: a stream token opens one stream across every replica, and a key's
rate limit is one bucket for all of them (a real Redis on 127.0.0.1:6379; skipped,
saying so, where none answers). Before, each process kept its own nonces and buckets:
a token was good once per replica, and N replicas allowed N times the rate."""

from __future__ import annotations

import secrets
import socket

import pytest

from api.keys.ratelimit import RedisRateLimiter
from gateway.nonce_ledger import RedisNonceLedger
from gateway.stream_tokens import StreamTokens, TokenError

REDIS = "redis://127.0.0.1:6379/0"


def _redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


needs_redis = pytest.mark.skipif(not _redis_answers(), reason="no Redis on 127.0.0.1:6379")


@pytest.fixture
def prefix() -> str:
    return f"test-{secrets.token_hex(4)}:"  # no other test's keys


def replica(prefix: str) -> StreamTokens:
    tokens = StreamTokens(b"s" * 32, ttl_s=30)  # the fleet's one secret
    tokens.ledger = RedisNonceLedger(REDIS, prefix)
    return tokens


@needs_redis
async def test_a_stream_token_opens_one_stream_in_the_whole_fleet(prefix) -> None:
    a, b = replica(prefix), replica(prefix)
    token = a.mint(call_id="call_1", org_id="org_1", agent_id="agt_1")
    assert (await a.redeem_shared(token)).call_id == "call_1"
    with pytest.raises(TokenError, match="already used"):
        await b.redeem_shared(token)  # the same token replayed against another replica
    other = a.mint(call_id="call_2", org_id="org_1", agent_id="agt_1")
    assert (await b.redeem_shared(other)).call_id == "call_2"
    for t in (a, b):
        await t.ledger.aclose()


@needs_redis
async def test_a_keys_rate_is_one_bucket_across_replicas(prefix) -> None:
    a = RedisRateLimiter(REDIS, rate_per_minute=5, prefix=prefix)
    b = RedisRateLimiter(REDIS, rate_per_minute=5, prefix=prefix)
    waits = [await (a if i % 2 else b).take("key_1", 0.0) for i in range(6)]
    assert waits[:5] == [0.0] * 5
    assert 0 < waits[5] <= 12.1  # one token back in 12 s at 5 per minute
    assert await a.take("key_2", 0.0) == 0.0  # another key has its own bucket
    await a.aclose()
    await b.aclose()


async def test_without_redis_each_process_still_refuses_its_own_replays(prefix) -> None:
    tokens = StreamTokens(b"s" * 32, ttl_s=30)
    tokens.ledger = RedisNonceLedger("redis://127.0.0.1:1/0", prefix)  # nothing listens
    token = tokens.mint(call_id="call_1", org_id="org_1", agent_id="agt_1")
    assert (await tokens.redeem_shared(token)).call_id == "call_1"
    with pytest.raises(TokenError, match="already used"):
        await tokens.redeem_shared(token)
    limiter = RedisRateLimiter("redis://127.0.0.1:1/0", rate_per_minute=2, prefix=prefix)
    assert [await limiter.take("k", 0.0) for _ in range(3)][:2] == [0.0, 0.0]
    assert await limiter.take("k", 0.0) > 0  # the process's own bucket decides
