"""A compact Redis checkpointer: the latest checkpoint of each thread, and its message
history stored once, as an append-only list of compressed messages.

LangGraph writes a checkpoint after every step, and each holds the whole message list. Stored
as is, a thread's history is written again at every step: Redis memory grows with the square
of its length (every checkpoint kept) or at least holds bloated copies, and every write
serialises the whole conversation again. Here:

- only the latest checkpoint of a (thread, namespace) is kept, with the pending writes of the
  step after it (what an interrupted step needs to resume), in two small hashes;
- list channels (`messages`) live in a Redis list, one compressed item per message; a new
  checkpoint appends the messages it added, and rewrites the list only when earlier messages
  changed (a removal or an in-place update);
- each process caches the decoded lists of the threads it works on, checked against a version
  number in Redis, so a turn neither re-reads nor re-decodes the history;
- keys expire after `ttl_seconds` without a new checkpoint, unless pinned (`apin`), which a
  thread waiting for a person needs: it must not expire before the answer comes.

All keys of a thread share a Redis hash tag, so one thread's keys live together even in a
cluster. The saver is async only.
"""

from __future__ import annotations

import random
import zlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

# A preset dictionary for zlib: the shape of serialised LangChain messages. Short messages
# are mostly this shape, and compress several times better with it. Never change these bytes:
# stored items name the dictionary they were compressed with (the first byte of each item).
_ZDICT_V1 = (
    b"\x94\xbclangchain_core.messages.tool\xabToolMessage\x89\xa7content\xb1additional_kwargs"
    b"\x80\xb1response_metadata\x80\xa4type\xa4tool\xa4name\xb0human_assistance\xa2id"
    b"\xactool_call_id\xa8call_\xa8artifact\xc0\xa6status\xa7success\xb3model_validate_json"
    b"\x94\xbalangchain_core.messages.ai\xa9AIMessage\x89\xa7content\xb1additional_kwargs"
    b"\x80\xb1response_metadata\x80\xa4type\xa2ai\xa4name\xc0\xa2id\xaatool_calls\x91\x84"
    b"\xa4name\xb0human_assistance\xa4args\x81\xa5query\xa2id\xa8call_\xa4type\xa9tool_call"
    b"\xb2invalid_tool_calls\x90\xaeusage_metadata\xc0\xb3model_validate_json"
    b"\x94\xbdlangchain_core.messages.human\xacHumanMessage\x86\xa7content\xb1additional_kwargs"
    b"\x80\xb1response_metadata\x80\xa4type\xa5human\xa4name\xa2id\xd9(slack:"
    b"\xb3model_validate_json\x94\xbalangchain_core.messages.ai\xa9AIMessage\x89\xa7content"
    b"\xb1additional_kwargs\x80\xb1response_metadata\x88\xabtoken_usage\x85\xb1completion_tokens"
    b"\xadprompt_tokens\xactotal_tokens\xb9completion_tokens_details\xc0\xb5prompt_tokens_details"
    b"\xc0\xaemodel_provider\xa6openai\xaamodel_name\xb2system_fingerprint\xc0\xa2id\xacchatcmpl-"
    b"\xacservice_tier\xc0\xadfinish_reason\xa4stop\xa8logprobs\xc0\xa4type\xa2ai\xa4name\xc0"
    b"\xa2id\xd9.lc_run--\xaatool_calls\x90\xb2invalid_tool_calls\x90\xaeusage_metadata\x85"
    b"\xacinput_tokens\xadoutput_tokens\xactotal_tokens\xb3input_token_details\x80"
    b"\xb4output_token_details\x80\xb3model_validate_json"
)
_RAW, _ZLIB_V1 = b"\x00", b"\x01"

# KEYS: checkpoint hash, writes hash, list keys... ARGV: expected version ("" = any), ttl
# seconds ("0" = none), number of hash field pairs, the pairs, then per list: mode
# ("append"/"replace"), item count, items.
_PUT = """
local version = redis.call('HGET', KEYS[1], 'version')
if ARGV[1] ~= '' and version ~= ARGV[1] then return false end
local ttl = tonumber(ARGV[2])
local pairs_n = tonumber(ARGV[3])
local at = 4
local fields = {}
for i = 1, pairs_n * 2 do fields[i] = ARGV[at]; at = at + 1 end
redis.call('HSET', KEYS[1], unpack(fields))
local new_version = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('DEL', KEYS[2])
for k = 3, #KEYS do
  local mode = ARGV[at]; local count = tonumber(ARGV[at + 1]); at = at + 2
  if mode == 'replace' then redis.call('DEL', KEYS[k]) end
  local batch = {}
  for i = 1, count do
    batch[#batch + 1] = ARGV[at]; at = at + 1
    if #batch == 500 then redis.call('RPUSH', KEYS[k], unpack(batch)); batch = {} end
  end
  if #batch > 0 then redis.call('RPUSH', KEYS[k], unpack(batch)) end
end
for k = 1, #KEYS do
  if k ~= 2 then
    if ttl > 0 then redis.call('EXPIRE', KEYS[k], ttl) else redis.call('PERSIST', KEYS[k]) end
  end
end
return new_version
"""

# KEYS: writes hash, checkpoint hash. ARGV: checkpoint id, then (field, overwrite, value)...
_PUT_WRITES = """
if redis.call('HGET', KEYS[1], '__checkpoint__') ~= ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], '__checkpoint__', ARGV[1])
end
for i = 2, #ARGV, 3 do
  if ARGV[i + 1] == '1' then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
  else redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 2]) end
end
local ttl = redis.call('PTTL', KEYS[2])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) else redis.call('PERSIST', KEYS[1]) end
return 1
"""


@dataclass
class _Cached:
    version: bytes
    lists: dict[str, list[Any]]
    fingerprints: dict[str, list[int]]


def _fingerprint(item: Any) -> int:
    """Cheap identity of a list item, stable across processes: id, type and content."""
    content = getattr(item, "content", item)
    extra = getattr(item, "tool_calls", None)
    key = (getattr(item, "type", ""), getattr(item, "id", None), content, extra)
    return zlib.crc32(repr(key).encode("utf-8", "surrogatepass"))


class CompactRedisSaver(BaseCheckpointSaver[str]):
    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        ttl_seconds: int | None = None,
        list_channels: Iterable[str] = ("messages",),
        prefix: str = "ckpt",
        serde: SerializerProtocol | None = None,
        cache_threads: int = 4096,
    ) -> None:
        super().__init__(serde=serde)
        if redis.get_connection_kwargs().get("decode_responses"):
            raise ValueError("CompactRedisSaver needs a Redis client without decode_responses")
        self._redis = redis
        self._ttl = int(ttl_seconds or 0)
        self._list_channels = tuple(list_channels)
        self._prefix = prefix
        self._cache: OrderedDict[tuple[str, str], _Cached] = OrderedDict()
        self._cache_size = cache_threads
        self._put = redis.register_script(_PUT)
        self._put_writes = redis.register_script(_PUT_WRITES)

    # ------------------------------------------------------------------ keys

    def _keys(self, thread_id: str, ns: str) -> tuple[str, str, list[str]]:
        tag = "{" + thread_id + "}"
        return (
            f"{self._prefix}:{tag}:{ns}",
            f"{self._prefix}-w:{tag}:{ns}",
            [f"{self._prefix}-l:{tag}:{ns}:{channel}" for channel in self._list_channels],
        )

    def thread_keys(self, thread_id: str, ns: str = "") -> list[str]:
        checkpoint, writes, lists = self._keys(thread_id, ns)
        return [checkpoint, writes, *lists]

    # ------------------------------------------------------------------ encoding

    def _dump(self, value: Any) -> bytes:
        kind, data = self.serde.dumps_typed(value)
        return kind.encode() + b"\x00" + data

    def _load(self, raw: bytes) -> Any:
        kind, _, data = raw.partition(b"\x00")
        return self.serde.loads_typed((kind.decode(), data))

    def _pack_item(self, item: Any) -> bytes:
        raw = self._dump(item)
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, _ZDICT_V1)
        packed = compressor.compress(raw) + compressor.flush()
        return _ZLIB_V1 + packed if len(packed) < len(raw) else _RAW + raw

    def _unpack_item(self, stored: bytes) -> Any:
        marker, body = stored[:1], stored[1:]
        if marker == _ZLIB_V1:
            body = zlib.decompressobj(-15, _ZDICT_V1).decompress(body)
        elif marker != _RAW:
            raise ValueError(f"unknown checkpoint item encoding {marker!r}")
        return self._load(body)

    # ------------------------------------------------------------------ cache

    def _remember(self, key: tuple[str, str], cached: _Cached) -> None:
        self._cache[key] = cached
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    # ------------------------------------------------------------------ reading

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        ns = configurable.get("checkpoint_ns", "")
        checkpoint_key, writes_key, list_keys = self._keys(thread_id, ns)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(checkpoint_key)
            pipe.hgetall(writes_key)
            stored, writes = await pipe.execute()
        if not stored:
            return None
        checkpoint_id = stored[b"id"].decode()
        wanted = get_checkpoint_id(config)
        if wanted and wanted != checkpoint_id:
            return None  # only the latest checkpoint is kept
        cache_key = (thread_id, ns)
        cached = self._cache.get(cache_key)
        if cached is None or cached.version != stored[b"version"]:
            cached = await self._read_lists(stored[b"version"], list_keys)
        self._remember(cache_key, cached)

        checkpoint: Checkpoint = self._load(stored[b"checkpoint"])
        values: dict[str, Any] = self._load(stored[b"values"])
        for channel, items in cached.lists.items():
            if channel in checkpoint["channel_versions"]:
                values[channel] = list(items)  # a copy: the graph may not mutate our cache
        checkpoint["channel_values"] = values
        parent = stored.get(b"parent", b"").decode()
        return CheckpointTuple(
            config={
                "configurable": {
                    "thread_id": thread_id,
                    "checkpoint_ns": ns,
                    "checkpoint_id": checkpoint_id,
                }
            },
            checkpoint=checkpoint,
            metadata=self._load(stored[b"metadata"]),
            parent_config=(
                {
                    "configurable": {
                        "thread_id": thread_id,
                        "checkpoint_ns": ns,
                        "checkpoint_id": parent,
                    }
                }
                if parent
                else None
            ),
            pending_writes=self._pending_writes(writes, checkpoint_id),
        )

    async def _read_lists(self, version: bytes, list_keys: list[str]) -> _Cached:
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in list_keys:
                pipe.lrange(key, 0, -1)
            raw_lists = await pipe.execute()
        lists = {
            channel: [self._unpack_item(raw) for raw in raw_items]
            for channel, raw_items in zip(self._list_channels, raw_lists, strict=True)
        }
        fingerprints = {
            channel: [_fingerprint(i) for i in items] for channel, items in lists.items()
        }
        return _Cached(version, lists, fingerprints)

    def _pending_writes(
        self, writes: dict[bytes, bytes], checkpoint_id: str
    ) -> list[tuple[str, str, Any]]:
        if writes.get(b"__checkpoint__", b"").decode() != checkpoint_id:
            return []
        rows = []
        for field, value in writes.items():
            if field == b"__checkpoint__":
                continue
            task_id, _, idx = field.decode().rpartition("\x00")
            channel, task_path, payload = value.split(b"\x00", 2)
            rows.append((task_path.decode(), task_id, int(idx), channel.decode(), payload))
        rows.sort(key=lambda r: writes_sort_key(r[0], r[1], r[2]))
        return [(task_id, channel, self._load(payload)) for _, task_id, _, channel, payload in rows]

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """The latest checkpoint of the thread (or of every thread), as it is all we keep."""
        if limit is not None and limit <= 0:
            return
        if config is not None:
            configs = [
                {
                    "configurable": {
                        "thread_id": config["configurable"]["thread_id"],
                        "checkpoint_ns": config["configurable"].get("checkpoint_ns", ""),
                    }
                }
            ]
        else:
            configs = []
            async for key in self._redis.scan_iter(match=f"{self._prefix}:{{*", count=1000):
                tag, _, ns = key.decode().partition("}:")
                configs.append(
                    {"configurable": {"thread_id": tag.split("{", 1)[1], "checkpoint_ns": ns}}
                )
        produced = 0
        before_id = get_checkpoint_id(before) if before else None
        for cfg in configs:
            found = await self.aget_tuple(cfg)  # type: ignore[arg-type]
            if found is None:
                continue
            if before_id and found.checkpoint["id"] >= before_id:
                continue
            if filter and any(found.metadata.get(k) != v for k, v in filter.items()):
                continue
            yield found
            produced += 1
            if limit is not None and produced >= limit:
                return

    # ------------------------------------------------------------------ writing

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        ns = configurable.get("checkpoint_ns", "")
        checkpoint_key, writes_key, list_keys = self._keys(thread_id, ns)
        cache_key = (thread_id, ns)
        stored = dict(checkpoint)
        values = dict(stored.pop("channel_values"))
        lists = {channel: list(values.pop(channel, None) or []) for channel in self._list_channels}
        fields = {
            "id": checkpoint["id"],
            "parent": configurable.get("checkpoint_id") or "",
            "checkpoint": self._dump(stored),
            "metadata": self._dump(metadata),
            "values": self._dump(values),
        }
        cached = self._cache.get(cache_key)
        fingerprints = {c: [_fingerprint(i) for i in items] for c, items in lists.items()}
        version = await self._write(
            checkpoint_key, writes_key, list_keys, fields, lists, fingerprints, cached
        )
        if version is None:  # another process wrote since we read: write everything
            version = await self._write(
                checkpoint_key, writes_key, list_keys, fields, lists, fingerprints, None
            )
        self._remember(cache_key, _Cached(str(version).encode(), lists, fingerprints))
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": ns,
                "checkpoint_id": checkpoint["id"],
            }
        }

    async def _write(
        self,
        checkpoint_key: str,
        writes_key: str,
        list_keys: list[str],
        fields: dict[str, Any],
        lists: dict[str, list[Any]],
        fingerprints: dict[str, list[int]],
        cached: _Cached | None,
    ) -> int | None:
        args: list[Any] = [cached.version if cached else b"", self._ttl, len(fields)]
        for name, value in fields.items():
            args += [name, value]
        for channel, items in lists.items():
            old = cached.fingerprints.get(channel) if cached else None
            if old is not None and fingerprints[channel][: len(old)] == old:
                new_items = items[len(old) :]
                args += ["append", len(new_items)]
            else:
                new_items = items
                args += ["replace", len(new_items)]
            args += [self._pack_item(item) for item in new_items]
        version = await self._put(keys=[checkpoint_key, writes_key, *list_keys], args=args)
        return int(version) if version else None

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        configurable = config["configurable"]
        checkpoint_key, writes_key, _ = self._keys(
            str(configurable["thread_id"]), configurable.get("checkpoint_ns", "")
        )
        args: list[Any] = [configurable["checkpoint_id"]]
        for idx, (channel, value) in enumerate(writes):
            slot = WRITES_IDX_MAP.get(channel, idx)
            payload = channel.encode() + b"\x00" + task_path.encode() + b"\x00" + self._dump(value)
            args += [f"{task_id}\x00{slot}", "1" if slot < 0 else "0", payload]
        await self._put_writes(keys=[writes_key, checkpoint_key], args=args)

    # ------------------------------------------------------------------ housekeeping

    async def adelete_thread(self, thread_id: str) -> None:
        tag = "{" + thread_id + "}"
        escaped = "".join("\\" + ch if ch in "*?[]\\" else ch for ch in tag)
        for prefix in (self._prefix, f"{self._prefix}-w", f"{self._prefix}-l"):
            async for key in self._redis.scan_iter(match=f"{prefix}:{escaped}:*", count=1000):
                await self._redis.delete(key)
        for key in [k for k in self._cache if k[0] == thread_id]:
            del self._cache[key]

    async def aclose(self) -> None:
        await self._redis.aclose()

    async def apin(self, thread_id: str, ns: str = "") -> None:
        """Keep the thread whatever its idle time (it waits for a person)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            for key in self.thread_keys(thread_id, ns):
                pipe.persist(key)
            await pipe.execute()

    def get_next_version(self, current: str | None, channel: None) -> str:
        number = 0 if current is None else int(str(current).split(".")[0])
        return f"{number + 1:032}.{random.random():016}"
