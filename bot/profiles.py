"""One customer across channels: a profile links their conversations (web chat session,
Messenger sender, WhatsApp number) and the contacts they gave.

Conversations are linked automatically when a contact matches (an email or phone given
on one channel equals one given on another, or a WhatsApp number), or by an agent.
Changes to profiles take one Redis lock: they are rare, and merging two profiles must
not interleave with another merge.

Keys (each starts with "<prefix>:"):
  profile:<pid>                 JSON of the CustomerProfile
  profile-of:<conversation id>  the conversation's profile id
  profile-by-contact:<contact>  the profile id that owns an email or phone
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field

from redis.asyncio import Redis

WHATSAPP = "whatsapp:"


@dataclass
class CustomerProfile:
    conversations: list[str]
    contacts: list[str] = field(default_factory=list)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    created_at: float = field(default_factory=time.time)


def mask_contact(contact: str) -> str:
    """Enough of a contact for the customer to recognise it, not enough to read it out."""
    if "@" in contact:
        name, domain = contact.split("@", 1)
        return f"{name[:1]}***@{domain}"
    return f"{contact[:3]}***{contact[-2:]}"


class Profiles:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    async def _load(self, profile_id: str | None) -> CustomerProfile | None:
        raw = await self.redis.get(self.key("profile", profile_id)) if profile_id else None
        return CustomerProfile(**json.loads(raw)) if raw else None

    async def profile_of(self, conversation_id: str) -> CustomerProfile | None:
        return await self._load(await self.redis.get(self.key("profile-of", conversation_id)))

    async def profile_with_contact(self, contact: str) -> CustomerProfile | None:
        """The profile that owns an email or phone (normalised as bot.contact does)."""
        return await self._load(await self.redis.get(self.key("profile-by-contact", contact)))

    async def _save(self, profile: CustomerProfile) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.key("profile", profile.id), json.dumps(asdict(profile)))
            for conversation_id in profile.conversations:
                pipe.set(self.key("profile-of", conversation_id), profile.id)
            for contact in profile.contacts:
                pipe.set(self.key("profile-by-contact", contact), profile.id)
            await pipe.execute()

    async def _merge(self, keep: CustomerProfile, other: CustomerProfile | None) -> CustomerProfile:
        if other is None or other.id == keep.id:
            return keep
        keep.conversations += [c for c in other.conversations if c not in keep.conversations]
        keep.contacts += [c for c in other.contacts if c not in keep.contacts]
        keep.created_at = min(keep.created_at, other.created_at)
        await self.redis.delete(self.key("profile", other.id))
        return keep

    async def add_contact(self, conversation_id: str, contact: str) -> CustomerProfile:
        """Record a contact the customer gave; a profile that already has it absorbs this conversation."""
        async with self.redis.lock(self.key("profiles-lock"), timeout=10, blocking_timeout=10):
            mine = await self.profile_of(conversation_id)
            owner = await self.profile_with_contact(contact)
            profile = owner or mine or CustomerProfile(conversations=[conversation_id])
            profile = await self._merge(profile, mine)
            if conversation_id not in profile.conversations:
                profile.conversations.append(conversation_id)
            if contact not in profile.contacts:
                profile.contacts.append(contact)
            await self._save(profile)
            return profile

    async def observe(self, conversation_id: str) -> None:
        """A WhatsApp conversation's number is a phone contact: link it as soon as it is seen."""
        if conversation_id.startswith(WHATSAPP) and not await self.redis.exists(
            self.key("profile-of", conversation_id)
        ):
            await self.add_contact(conversation_id, "+" + conversation_id.removeprefix(WHATSAPP))

    async def link(self, conversation_id: str, other_id: str) -> CustomerProfile:
        """An agent says two conversations are the same customer."""
        async with self.redis.lock(self.key("profiles-lock"), timeout=10, blocking_timeout=10):
            mine, theirs = await self.profile_of(conversation_id), await self.profile_of(other_id)
            profile = await self._merge(mine or CustomerProfile(conversations=[conversation_id]), theirs)
            for cid in (conversation_id, other_id):
                if cid not in profile.conversations:
                    profile.conversations.append(cid)
            await self._save(profile)
            return profile

    async def unlink(self, conversation_id: str) -> None:
        """An agent takes a conversation out of its profile (its contacts stay with the profile)."""
        async with self.redis.lock(self.key("profiles-lock"), timeout=10, blocking_timeout=10):
            profile = await self.profile_of(conversation_id)
            if profile is None:
                return
            profile.conversations.remove(conversation_id)
            await self.redis.delete(self.key("profile-of", conversation_id))
            if profile.conversations:
                await self._save(profile)
            else:
                await self._delete(profile)

    async def _delete(self, profile: CustomerProfile) -> None:
        keys = [self.key("profile", profile.id)]
        keys += [self.key("profile-of", c) for c in profile.conversations]
        keys += [self.key("profile-by-contact", c) for c in profile.contacts]
        await self.redis.delete(*keys)

    async def forget(self, conversation_id: str) -> list[str]:
        """Delete the customer's profile; returns the conversations whose data must be deleted too."""
        async with self.redis.lock(self.key("profiles-lock"), timeout=10, blocking_timeout=10):
            profile = await self.profile_of(conversation_id)
            if profile is None:
                return [conversation_id]
            await self._delete(profile)
            return sorted(set(profile.conversations) | {conversation_id})
