"""NATS JWTs (decentralized auth, reference/NATS.md §5.2): nkeys, encoding, decoding, verification
and claim builders for operators, accounts and users.

Owns:
- nkey helpers on top of the `nkeys` package: `create_seed(kind)`, `public_key(seed)`,
  `key_kind(public)` (the role of a valid public key, CRC checked), `is_public_key(key, kind)`;
- the `ed25519-nkey` JWS algorithm, registered on a private PyJWT `PyJWS` instance (PyJWT does
  the base64url/JWS framing; the algorithm signs with a seed and verifies with a public nkey);
- `encode(claims, seed, now)`: sets `iss`, `iat`, `nats.type`/`version` and `jti` (base32, no
  padding, of SHA-512/256 over the common claims JSON with `jti` empty, as the reference's jwt
  library computes it; JSON written the way Go's encoding/json writes it);
- `decode(token)`: header, claims, V2 signature by `iss`, the issuer's role for the claim type,
  with the reference library's error texts; returns a frozen `Claims`;
- `validate(claims, now)`: expiry/not-before and the per-type checks most often hit;
- `verify_account(token, trusted_keys, now)` / `verify_user(token, account, now)`: the chain the
  server walks (an account is signed by the operator or one of its signing keys; a user by its
  account or one of the account's signing keys, `issuer_account` naming the account);
- builders `operator_claims`, `account_claims`, `user_claims` producing the JSON nsc writes
  (unlimited limits as -1, empty pub/sub objects present), and `export_claim`, `import_claim`,
  `activation_claims` for what an account shares;
- activation tokens (private exports, `token_req`): `import_issues(imp, account)` (the jwt
  library's blocking import checks) and `check_import(exporter, importer, imp, now)` -> None
  when the import is authorized (public, account-token position, or a valid activation that is
  not revoked), else the reason.

Pure: no I/O; the clock is an argument (seconds since the epoch). Must not import actors/config.
Legacy v1 JWTs (`alg: ed25519`, claims-only signature) are decoded and verified, never written.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from types import MappingProxyType

import nacl.exceptions
import nacl.signing
import nkeys
from jwt.algorithms import Algorithm
from jwt.api_jws import PyJWS
from jwt.exceptions import InvalidKeyError, InvalidSignatureError, PyJWTError

ALGORITHM = "ed25519-nkey"
ALGORITHM_V1 = "ed25519"
LIB_VERSION = 2
NO_LIMIT = -1

OPERATOR, ACCOUNT, USER, ACTIVATION, AUTHORIZATION, GENERIC = (
    "operator", "account", "user", "activation", "authorization", "generic")


class JWTError(ValueError):
    """A token or claim the reference would refuse; str() is the reference library's text."""


# -- nkeys ----------------------------------------------------------------------------------

_PREFIXES = {
    OPERATOR: nkeys.PREFIX_BYTE_OPERATOR,
    ACCOUNT: nkeys.PREFIX_BYTE_ACCOUNT,
    USER: nkeys.PREFIX_BYTE_USER,
    "server": nkeys.PREFIX_BYTE_SERVER,
    "cluster": nkeys.PREFIX_BYTE_CLUSTER,
}
_KINDS = {v: k for k, v in _PREFIXES.items()}

# which key roles may sign which claim type (the jwt library's ExpectedPrefixes)
EXPECTED_ISSUERS = {
    OPERATOR: (OPERATOR,),
    ACCOUNT: (ACCOUNT, OPERATOR),
    USER: (ACCOUNT,),
    ACTIVATION: (ACCOUNT, OPERATOR),
    AUTHORIZATION: ("server",),
}


def create_seed(kind: str) -> str:
    """A new random seed (`SO…`, `SA…`, `SU…`) for a key of `kind`."""
    return nkeys.encode_seed(os.urandom(32), _PREFIXES[kind]).decode()


def public_key(seed: str) -> str:
    """The public key (`O…`, `A…`, `U…`) of a seed."""
    try:
        return nkeys.from_seed(seed.encode()).public_key.decode()
    except (nkeys.NkeysError, binascii.Error, ValueError) as e:
        raise JWTError("invalid seed") from e


def _raw_public(key: str) -> tuple[str, bytes] | None:
    """(role, 32 raw key bytes) of a public nkey with a valid checksum, else None."""
    if not isinstance(key, str) or len(key) != 56:
        return None
    try:
        raw = base64.b32decode(key + "=" * (-len(key) % 8))
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 35 or nkeys.crc16_checksum(raw[:-2]) != raw[-2:]:
        return None
    kind = _KINDS.get(raw[0])
    return (kind, raw[1:33]) if kind else None


def key_kind(key: str) -> str | None:
    """`operator`, `account`, `user`, `server` or `cluster` for a valid public key, else None."""
    parsed = _raw_public(key)
    return parsed[0] if parsed else None


def is_public_key(key: str, kind: str) -> bool:
    return key_kind(key) == kind


def sign(seed: str, data: bytes) -> bytes:
    """An ed25519 signature by a seed (what a client sends as `sig` for a nonce)."""
    return nkeys.from_seed(seed.encode()).sign(data)


# -- the JWS algorithm ----------------------------------------------------------------------

class NkeyAlgorithm(Algorithm):
    """`ed25519-nkey`: sign with an nkey seed (str), verify with a public nkey (str)."""

    def prepare_key(self, key):
        if isinstance(key, bytes):
            key = key.decode()
        if not isinstance(key, str):
            raise InvalidSignatureError("an nkey seed or public key is required")
        if key.startswith("S"):
            try:
                return nkeys.from_seed(key.encode())
            except (nkeys.NkeysError, binascii.Error, ValueError) as e:
                raise PyJWTError("invalid nkey seed") from e
        parsed = _raw_public(key)
        if parsed is None:
            raise PyJWTError("invalid public nkey")
        return nacl.signing.VerifyKey(parsed[1])

    def sign(self, msg: bytes, key) -> bytes:
        if not isinstance(key, nkeys.KeyPair):
            raise PyJWTError("signing needs an nkey seed")
        return key.sign(msg)

    def verify(self, msg: bytes, key, sig: bytes) -> bool:
        if isinstance(key, nkeys.KeyPair):
            key = key._keys.verify_key  # noqa: SLF001 - nkeys has no public accessor
        try:
            key.verify(msg, sig)
            return True
        except (nacl.exceptions.BadSignatureError, ValueError):
            return False

    @staticmethod
    def to_jwk(key_obj, as_dict: bool = False):
        raise InvalidKeyError("nkeys have no JWK form")

    @staticmethod
    def from_jwk(jwk):
        raise InvalidKeyError("nkeys have no JWK form")


_JWS = PyJWS(algorithms=[])
_JWS.register_algorithm(ALGORITHM, NkeyAlgorithm())


# -- JSON as Go writes it -------------------------------------------------------------------

def go_json(obj) -> bytes:
    """Compact JSON with Go encoding/json's HTML-safe escapes (the bytes the jti is hashed over)."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                    ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return text.encode()


_COMMON = ("aud", "exp", "jti", "iat", "iss", "name", "nbf", "sub")


def _common(claims: dict) -> dict:
    """The common claims in Go's field order, empty ones left out (omitempty)."""
    return {k: claims[k] for k in _COMMON if claims.get(k)}


def claims_hash(claims: dict) -> str:
    """The `jti`: base32 (no padding) of SHA-512/256 over the common claims, `jti` excluded."""
    common = _common(claims)
    common.pop("jti", None)
    digest = hashlib.new("sha512_256", go_json(common)).digest()
    return base64.b32encode(digest).decode().rstrip("=")


# -- encode / decode ------------------------------------------------------------------------

def payload_bytes(claims: dict, issuer: str, now: float | None = None) -> bytes:
    """The claims segment `encode` signs (before base64): common claims with `iss`, `iat` and
    `jti` set, then `nats` with `type`/`version` last, as Go's encoding/json writes them."""
    nats = dict(claims.get("nats") or {})
    kind = nats.get("type", GENERIC)
    data = dict(claims)
    data["iss"] = issuer
    data["iat"] = int(time.time() if now is None else now)
    data.pop("jti", None)
    data["jti"] = claims_hash(data)
    # generic fields last, as Go embeds them at the end of the nats struct
    tags = nats.pop("tags", None)
    nats.pop("type", None)
    nats.pop("version", None)
    if tags:
        nats["tags"] = list(tags)
    nats["type"] = kind
    nats["version"] = LIB_VERSION
    payload = _common(data)
    payload["nats"] = nats
    return go_json(payload)


def encode(claims: dict, seed: str, now: float | None = None) -> str:
    """Sign `claims` (as built by the builders below: common claims + `nats`) with `seed`.
    Sets `iss`, `iat`, `jti` and `nats.type`/`nats.version`; returns the compact JWT."""
    kind = (claims.get("nats") or {}).get("type", GENERIC)
    subject = claims.get("sub", "")
    if not subject:
        raise JWTError("subject is not set")
    expected_subject = {OPERATOR: OPERATOR, ACCOUNT: ACCOUNT, USER: USER}.get(kind)
    if expected_subject and not is_public_key(subject, expected_subject):
        raise JWTError(f"expected subject to be {'an ' if kind == OPERATOR else ''}"
                       f"{expected_subject} public key")
    if kind == ACTIVATION and not is_public_key(subject, ACCOUNT):
        raise JWTError("expected subject to be an account")
    issuer = public_key(seed)
    allowed = EXPECTED_ISSUERS.get(kind)
    if allowed and key_kind(issuer) not in allowed:
        raise JWTError(f"unable to validate expected prefixes - [{' '.join(allowed)}]")
    return _JWS.encode(payload_bytes(claims, issuer, now), seed, algorithm=ALGORITHM,
                       headers={"typ": "JWT", "alg": ALGORITHM}, sort_headers=False)


@dataclass(frozen=True)
class Claims:
    """A decoded, signature-checked JWT. `nats` is read-only; `token` is the JWT itself."""

    type: str
    subject: str
    issuer: str
    name: str = ""
    issued_at: int = 0
    expires: int = 0
    not_before: int = 0
    jti: str = ""
    audience: str = ""
    version: int = LIB_VERSION
    nats: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    token: str = field(default="", repr=False)

    def get(self, key: str, default=None):
        return self.nats.get(key, default)

    @property
    def issuer_account(self) -> str:
        return self.nats.get("issuer_account", "") or ""

    @property
    def signing_keys(self) -> tuple[str, ...]:
        """Operator or account signing keys (scoped account keys by their `key`)."""
        keys = self.nats.get("signing_keys") or ()
        return tuple(k["key"] if isinstance(k, dict) else k for k in keys)

    @property
    def system_account(self) -> str:
        return self.nats.get("system_account", "") or ""

    def did_sign(self, other: "Claims") -> bool:
        """This operator/account (or one of its signing keys) issued `other`."""
        if other.issuer == self.subject:
            return True
        if self.type == OPERATOR:
            return other.issuer in self.signing_keys
        if self.type == ACCOUNT and other.issuer_account == self.subject:
            return other.issuer in self.signing_keys
        return False


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _segment_json(segment: str):
    """A JWT segment's JSON, with Go's error texts for bad base64 and JSON."""
    try:
        raw = _b64(segment)
    except (binascii.Error, ValueError):
        bad = next((i for i, c in enumerate(segment) if not (c.isalnum() or c in "-_")), len(segment))
        raise JWTError(f"illegal base64 data at input byte {bad}") from None
    try:
        return json.loads(raw)
    except ValueError as e:
        text = raw.decode("utf-8", "replace")
        pos = getattr(e, "pos", len(text))
        if pos >= len(text.rstrip()):
            raise JWTError("unexpected end of JSON input") from None
        raise JWTError(f"invalid character {text[pos]!r} looking for beginning of value") from None


def decode(token: str) -> Claims:
    """Decode and check the signature and issuer role; errors read as the reference library's."""
    if not isinstance(token, str):
        raise JWTError("expected 3 chunks")
    token = token.strip()
    chunks = token.split(".")
    if len(chunks) != 3:
        raise JWTError("expected 3 chunks")
    header = _segment_json(chunks[0])
    if not isinstance(header, dict):
        raise JWTError("invalid header")
    typ = header.get("typ", "")
    if str(typ).upper() != "JWT":
        raise JWTError(f'not supported type "{typ}"')
    alg = str(header.get("alg", "")).lower()
    if alg not in (ALGORITHM, ALGORITHM_V1):
        raise JWTError(f'unexpected "{header.get("alg", "")}" algorithm')
    data = _segment_json(chunks[1])
    if not isinstance(data, dict):
        raise JWTError("invalid claims")
    nats = data.get("nats") if isinstance(data.get("nats"), dict) else {}
    if data.get("type"):  # v1 carries the type at the top level
        kind, version = data["type"], 1
    else:
        kind, version = nats.get("type") or GENERIC, int(nats.get("version") or 0)
    if version > LIB_VERSION:
        raise JWTError("JWT was generated by a newer version ")
    if kind in ("cluster", "server"):
        raise JWTError(f"{kind.capitalize()}Claims are not supported")
    issuer = data.get("iss", "")
    if version <= 1:
        # v1 signed the claims segment only; PyJWS cannot express that, the algorithm can
        if not _verify_v1(chunks[1], chunks[2], issuer):
            raise JWTError("claim failed V1 signature verification")
        nats = dict(nats)
        for key in ("issuer_account", "tags"):
            if data.get(key) and key not in nats:
                nats[key] = data[key]
    else:
        if not isinstance(issuer, str) or key_kind(issuer) is None:
            raise JWTError("claim failed V2 signature verification")
        try:
            _JWS.decode_complete(token, issuer, algorithms=[ALGORITHM])
        except PyJWTError:
            raise JWTError("claim failed V2 signature verification") from None
    allowed = EXPECTED_ISSUERS.get(kind)
    if allowed and key_kind(issuer) not in allowed:
        raise JWTError(f"unable to validate expected prefixes - [{' '.join(allowed)}]")
    return Claims(type=kind, subject=str(data.get("sub", "")), issuer=issuer,
                  name=str(data.get("name", "")), issued_at=int(data.get("iat") or 0),
                  expires=int(data.get("exp") or 0), not_before=int(data.get("nbf") or 0),
                  jti=str(data.get("jti", "")), audience=str(data.get("aud", "")),
                  version=version, nats=MappingProxyType(nats), token=token)


def _verify_v1(claims_segment: str, sig_segment: str, issuer) -> bool:
    if not isinstance(issuer, str) or key_kind(issuer) is None:
        return False
    algorithm = _JWS.get_algorithm_by_name(ALGORITHM)
    try:
        return algorithm.verify(claims_segment.encode(), algorithm.prepare_key(issuer), _b64(sig_segment))
    except (binascii.Error, ValueError, PyJWTError):
        return False


def decode_as(token: str, kind: str) -> Claims:
    """`decode`, then insist on the claim type (`not account claim`, ...)."""
    claims = decode(token)
    if claims.type != kind:
        raise JWTError(f"not {kind} claim")
    return claims


# -- validation -----------------------------------------------------------------------------

def validate(claims: Claims, now: float | None = None) -> list[str]:
    """The reference library's validation problems for `claims` (empty = valid)."""
    now = int(time.time() if now is None else now)
    issues: list[str] = []
    if claims.expires > 0 and now > claims.expires:
        issues.append("claim is expired")
    if claims.not_before > 0 and claims.not_before > now:
        issues.append("claim is not yet valid")
    nats = claims.nats
    if claims.type == OPERATOR:
        for key in nats.get("signing_keys") or ():
            if not is_public_key(key, OPERATOR):
                issues.append(f"{key} is not an operator public key")
        sys_acc = nats.get("system_account", "")
        if sys_acc and not is_public_key(sys_acc, ACCOUNT):
            issues.append(f"{sys_acc} is not an account public key")
        url = nats.get("account_server_url", "")
        if url and "://" not in url:
            issues.append(f'account server url "{url}" requires a protocol')
    elif claims.type == ACCOUNT:
        limits = nats.get("limits") or {}
        imports, exports = nats.get("imports") or [], nats.get("exports") or []
        if limits.get("imports", 0) not in (NO_LIMIT,) and limits and len(imports) > limits.get("imports", 0):
            issues.append("the account contains more imports than allowed by the operator")
        if limits.get("exports", 0) != NO_LIMIT and limits and len(exports) > limits.get("exports", 0):
            issues.append("the account contains more exports than allowed by the operator")
        for key in claims.signing_keys:
            if not is_public_key(key, ACCOUNT):
                issues.append(f"{key} is not an account public key")
        issues.extend(_permission_issues(nats.get("default_permissions") or {}))
        for imp in nats.get("imports") or ():
            issues.extend(import_issues(imp, claims.subject) if isinstance(imp, dict)
                          else ["null import is not allowed"])
    elif claims.type == ACTIVATION:
        issues.extend(_activation_issues(claims))
    elif claims.type == USER:
        issues.extend(_permission_issues(nats))
        issuer_account = nats.get("issuer_account", "")
        if issuer_account and not is_public_key(issuer_account, ACCOUNT):
            issues.append("account_id is not an account public key")
        for cidr in nats.get("src") or ():
            if not _valid_cidr(cidr):
                issues.append(f'invalid cidr "{cidr}" in user src limits')
    return issues


def _permission_issues(perms: dict) -> list[str]:
    issues = []
    for side, queues in (("pub", False), ("sub", True)):
        p = perms.get(side) or {}
        for subj in list(p.get("allow") or ()) + list(p.get("deny") or ()):
            parts = subj.split(" ")
            if len(parts) > 2:
                issues.append(f'Permission Subject "{subj}" contains too many spaces')
                continue
            for part in parts:
                issues.extend(_subject_issues(part))
            if len(parts) == 2 and not queues:
                issues.append(f'Permission Subject "{subj}" is not allowed to contain queue')
    return issues


def _subject_issues(v: str) -> list[str]:
    if v == "":
        return ["subject cannot be empty"]
    issues = []
    if " " in v:
        issues.append(f'subject "{v}" cannot have spaces')
    if v[0] == "." or v[-1] == ".":
        issues.append(f'subject "{v}" cannot start or end with a `.`')
    if ".." in v:
        issues.append(f'subject "{v}" cannot contain consecutive `.`')
    return issues


def _valid_cidr(cidr: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_network(cidr, strict=False)
        return "/" in cidr
    except ValueError:
        return False


def verify_account(token: str, trusted_keys, now: float | None = None) -> Claims:
    """An account JWT the server would accept: decodes, is an account, is signed by one of the
    trusted operator keys (operator + signing keys), and validates."""
    claims = decode_as(token, ACCOUNT)
    if claims.issuer not in set(trusted_keys):
        raise JWTError("not trusted")
    issues = validate(claims, now)
    if issues:
        raise JWTError(issues[0])
    return claims


def verify_user(token: str, account: Claims, now: float | None = None) -> Claims:
    """A user JWT issued by `account` (or one of its signing keys, naming it in
    `issuer_account`), not revoked, and valid."""
    claims = decode_as(token, USER)
    if claims.issuer_account and claims.issuer_account != account.subject:
        raise JWTError("user issuer account does not match")
    if not account.did_sign(claims):
        raise JWTError("user JWT issuer is not known")
    revocations = account.nats.get("revocations") or {}
    revoked_at = max(revocations.get(claims.subject, 0), revocations.get("*", 0))
    if revoked_at and claims.issued_at <= revoked_at:
        raise JWTError("user JWT has been revoked")
    issues = validate(claims, now)
    if issues:
        raise JWTError(issues[0])
    return claims


# -- exports, imports and activations --------------------------------------------------------

STREAM, SERVICE = "stream", "service"


def subject_contained_in(subject: str, pattern: str) -> bool:
    """Every subject `subject` can match is also matched by `pattern` (the jwt library's
    IsContainedIn, the server's isSubsetMatch): a `*` in `subject` needs a `*` or `>` in
    `pattern`, a `>` needs a `>`."""
    stoks, ptoks = subject.split("."), pattern.split(".")
    for i, p in enumerate(ptoks):
        if p == ">":
            return len(stoks) > i
        if i >= len(stoks):
            return False
        t = stoks[i]
        if p == "*":
            if t == ">":
                return False
            continue
        if t != p:
            return False
    return len(stoks) == len(ptoks)


def _activation_issues(claims: Claims) -> list[str]:
    """The activation's own checks (type, subject, issuer_account); time checks are validate's."""
    nats = claims.nats
    issues = []
    kind = nats.get("kind", "")
    subject = str(nats.get("subject", "") or "")
    if kind not in (STREAM, SERVICE):
        issues.append(f'invalid export type: "{kind}"')
    issues.extend(_subject_issues(subject))
    issuer_account = nats.get("issuer_account", "")
    if issuer_account and not is_public_key(issuer_account, ACCOUNT):
        issues.append("account_id is not an account public key")
    return issues


def import_issues(imp: dict, account: str) -> list[str]:
    """The jwt library's blocking problems with import `imp` of account `account` (public key),
    the activation token included (decoded, issued by or for the exporting account, to this
    account, of the import's kind and covering its subject; its expiry is not checked here)."""
    issues = []
    kind = imp.get("type", "")
    subject = str(imp.get("subject", "") or "")
    if kind not in (STREAM, SERVICE):
        issues.append(f'invalid import type: "{kind}"')
    if not imp.get("account"):
        issues.append("account to import from is not specified")
    if imp.get("local_subject") and imp.get("to"):
        issues.append("Local Subject replaces To")
    token = imp.get("token") or ""
    if not token:
        return issues
    try:
        act = decode_as(token, ACTIVATION)
    except JWTError:
        return issues + [f'import "{subject}" contains an invalid activation token']
    if imp.get("account") not in (act.issuer, act.issuer_account):
        issues.append(f'activation token doesn\'t match account for import "{subject}"')
    if act.subject != account:
        issues.append(f'activation token doesn\'t match account it is being included in, "{subject}"')
    act_kind = act.nats.get("kind", "")
    if act_kind != kind:
        issues.append(f"mismatch between token import type {act_kind} and type of import {kind}")
    issues.extend(_activation_issues(act))
    covered = (imp.get("to") or subject) if kind == SERVICE else subject
    act_subject = str(act.nats.get("subject", "") or "")
    if not subject_contained_in(covered, act_subject):
        issues.append(f'activation token import subject "{act_subject}" doesn\'t match import "{subject}"')
    return issues


def find_export(exporter: Claims, subject: str, kind: str):
    """(export claim, import subject tokens) of the export an import of `subject` uses: an
    export of that exact subject first, else one whose subject contains it (tokens are None
    for the exact match, as in the reference)."""
    exports = [e for e in exporter.nats.get("exports") or ()
               if isinstance(e, dict) and e.get("subject") and (e.get("type") or STREAM) == kind]
    for e in exports:
        if e["subject"] == subject:
            return e, None
    for e in exports:
        if subject_contained_in(subject, e["subject"]):
            return e, subject.split(".")
    return None, None


def check_import(exporter: Claims | None, importer: str, imp: dict,
                 now: float | None = None) -> tuple[str, int]:
    """Is account `importer` (public key) authorized to use import `imp` of `exporter`'s
    account JWT? Returns ("", activation expiry or 0) when it is, else (reason, 0).

    A public export authorizes everyone; an export with `account_token_position` the importer
    whose key is at that token of the imported subject; a `token_req` export only an import
    carrying an activation that passes `import_issues`, is issued by the exporter or one of
    its signing keys (then naming it in `issuer_account`), is valid now and is not revoked in
    the export's `revocations` (importer key or `*`, at or after the activation's `iat`)."""
    now = int(time.time() if now is None else now)
    kind = imp.get("type", "")
    what = "service" if kind == SERVICE else "stream"
    denied = f"{what} import not authorized"
    if exporter is None:
        return "account not found", 0
    export, tokens = find_export(exporter, str(imp.get("subject", "")), kind)
    if export is None:
        return denied, 0
    position = int(export.get("account_token_position") or 0)
    token_req = bool(export.get("token_req"))
    if not token_req and position == 0:
        return "", 0
    if position > 0:
        ok = tokens is not None and position <= len(tokens) and tokens[position - 1] == importer
        return ("", 0) if ok else (denied, 0)
    token = imp.get("token") or ""
    if not token:
        return denied + " (no activation token)", 0
    issues = import_issues(imp, importer)
    if issues:
        return f"{denied} ({issues[0]})", 0
    act = decode_as(token, ACTIVATION)
    if act.issuer_account:
        if act.issuer_account != exporter.subject:
            return (f'{denied} (Invalid issuer account "{act.issuer_account}" in activation claim '
                    f'for account "{exporter.subject}")'), 0
        if act.issuer != exporter.subject and act.issuer not in exporter.signing_keys:
            return f"{denied} (activation signed by an unknown key)", 0
    issues = validate(act, now)
    if issues:
        return f"{denied} ({issues[0]})", 0
    if act.expires and act.expires <= now:
        return f"{denied} (claim is expired)", 0
    revocations = export.get("revocations") or {}
    revoked_at = max(int(revocations.get(importer, 0) or 0), int(revocations.get("*", 0) or 0))
    if revoked_at and revoked_at >= act.issued_at:
        return f"{denied} (activation revoked)", 0
    return "", act.expires


# -- builders -------------------------------------------------------------------------------

def _base(subject: str, name: str, expires: int, not_before: int, audience: str = "") -> dict:
    out = {"sub": subject, "name": name or subject}
    if expires:
        out["exp"] = int(expires)
    if not_before:
        out["nbf"] = int(not_before)
    if audience:
        out["aud"] = audience
    return out


def operator_claims(subject: str, name: str, *, signing_keys=(), system_account: str = "",
                    account_server_url: str = "", operator_service_urls=(),
                    assert_server_version: str = "", strict_signing_key_usage: bool = False,
                    expires: int = 0, not_before: int = 0, tags=()) -> dict:
    nats: dict = {}
    if signing_keys:
        nats["signing_keys"] = list(signing_keys)
    if account_server_url:
        nats["account_server_url"] = account_server_url
    if operator_service_urls:
        nats["operator_service_urls"] = list(operator_service_urls)
    if system_account:
        nats["system_account"] = system_account
    if assert_server_version:
        nats["assert_server_version"] = assert_server_version
    if strict_signing_key_usage:
        nats["strict_signing_key_usage"] = True
    if tags:
        nats["tags"] = list(tags)
    nats["type"] = OPERATOR
    return {**_base(subject, name, expires, not_before), "nats": nats}


ACCOUNT_LIMIT_KEYS = ("subs", "data", "payload", "imports", "exports", "wildcards",
                      "disallow_bearer", "conn", "leaf", "mem_storage", "disk_storage", "streams",
                      "consumer", "max_ack_pending", "mem_max_stream_bytes",
                      "disk_max_stream_bytes", "max_bytes_required")


def account_limits(**overrides) -> dict:
    """Account limits as nsc writes a new account: NATS and account limits unlimited (-1),
    wildcard exports allowed, JetStream off (0 values are left out, as Go's omitempty does).
    `overrides` set any key of ACCOUNT_LIMIT_KEYS (and `tiered_limits`)."""
    values = {"subs": NO_LIMIT, "data": NO_LIMIT, "payload": NO_LIMIT, "imports": NO_LIMIT,
              "exports": NO_LIMIT, "wildcards": True, "disallow_bearer": False, "conn": NO_LIMIT,
              "leaf": NO_LIMIT, "mem_storage": 0, "disk_storage": 0, "streams": 0, "consumer": 0,
              "max_ack_pending": 0, "mem_max_stream_bytes": 0, "disk_max_stream_bytes": 0,
              "max_bytes_required": False}
    for key, value in overrides.items():
        if key not in values and key != "tiered_limits":
            raise ValueError(f"unknown account limit {key!r}")
        values[key] = value
    out = {k: values[k] for k in ACCOUNT_LIMIT_KEYS if values[k]}
    if overrides.get("tiered_limits"):
        out["tiered_limits"] = overrides["tiered_limits"]
    return out


def permissions(pub_allow=(), pub_deny=(), sub_allow=(), sub_deny=(), resp=None) -> dict:
    """`{"pub":{allow,deny},"sub":{allow,deny},"resp":{max,ttl}}`; empty objects kept (Go
    writes a struct even when its fields are empty). `resp` = (max msgs, ttl in seconds)."""
    out: dict = {"pub": {}, "sub": {}}
    for side, allow, deny in (("pub", pub_allow, pub_deny), ("sub", sub_allow, sub_deny)):
        if allow:
            out[side]["allow"] = list(allow)
        if deny:
            out[side]["deny"] = list(deny)
    if resp is not None:
        max_msgs, ttl = resp
        out["resp"] = {"max": int(max_msgs), "ttl": int(ttl * 1e9)}  # Go duration: nanoseconds
    return out


def account_claims(subject: str, name: str, *, limits: dict | None = None, imports=(), exports=(),
                   signing_keys=(), revocations: dict | None = None,
                   default_permissions: dict | None = None, mappings: dict | None = None,
                   description: str = "", info_url: str = "", expires: int = 0,
                   not_before: int = 0, tags=()) -> dict:
    nats: dict = {}
    if imports:
        nats["imports"] = sorted(imports, key=lambda i: i.get("subject", ""))
    if exports:
        nats["exports"] = sorted(exports, key=lambda e: e.get("subject", ""))
    nats["limits"] = account_limits() if limits is None else dict(limits)
    if signing_keys:
        nats["signing_keys"] = list(signing_keys)
    if revocations:
        nats["revocations"] = dict(revocations)
    nats["default_permissions"] = default_permissions or permissions()
    if mappings:
        nats["mappings"] = dict(mappings)
    nats["authorization"] = {}
    if description:
        nats["description"] = description
    if info_url:
        nats["info_url"] = info_url
    if tags:
        nats["tags"] = list(tags)
    nats["type"] = ACCOUNT
    return {**_base(subject, name, expires, not_before), "nats": nats}


def user_claims(subject: str, name: str, *, pub_allow=(), pub_deny=(), sub_allow=(), sub_deny=(),
                resp=None, src=(), times=(), times_location: str = "", subs: int = NO_LIMIT,
                data: int = NO_LIMIT, payload: int = NO_LIMIT, bearer_token: bool = False,
                issuer_account: str = "", allowed_connection_types=(), expires: int = 0,
                not_before: int = 0, tags=()) -> dict:
    """`times` = [(start, end)] as "HH:MM:SS"; `resp` = (max msgs, ttl seconds)."""
    nats = permissions(pub_allow, pub_deny, sub_allow, sub_deny, resp)
    if src:
        nats["src"] = list(src)
    if times:
        nats["times"] = [{"start": s, "end": e} for s, e in times]
    if times_location:
        nats["times_location"] = times_location
    for key, value in (("subs", subs), ("data", data), ("payload", payload)):
        if value:
            nats[key] = int(value)
    if bearer_token:
        nats["bearer_token"] = True
    if allowed_connection_types:
        nats["allowed_connection_types"] = list(allowed_connection_types)
    if issuer_account:
        nats["issuer_account"] = issuer_account
    if tags:
        nats["tags"] = list(tags)
    nats["type"] = USER
    return {**_base(subject, name, expires, not_before), "nats": nats}


def export_claim(subject: str, *, service: bool = False, name: str = "", token_req: bool = False,
                 response_type: str = "", account_token_position: int = 0,
                 revocations: dict | None = None, description: str = "") -> dict:
    """One entry of an account's `exports`, keys in the Go struct's order. `response_type`
    (services): Singleton, Stream or Chunked."""
    out: dict = {"name": name or subject, "subject": subject, "type": SERVICE if service else STREAM}
    if token_req:
        out["token_req"] = True
    if revocations:
        out["revocations"] = dict(revocations)
    if service and response_type:
        out["response_type"] = response_type
    if account_token_position:
        out["account_token_position"] = int(account_token_position)
    if description:
        out["description"] = description
    return out


def import_claim(account: str, subject: str, *, service: bool = False, name: str = "",
                 local_subject: str = "", token: str = "") -> dict:
    """One entry of an account's `imports`: `subject` is the exporter's, `local_subject` the
    importer's name for it, `token` the activation JWT of a private export."""
    out: dict = {"name": name or subject, "subject": subject, "account": account}
    if token:
        out["token"] = token
    if local_subject:
        out["local_subject"] = local_subject
    out["type"] = SERVICE if service else STREAM
    return out


def activation_claims(subject: str, import_subject: str, kind: str = STREAM, *, name: str = "",
                      issuer_account: str = "", expires: int = 0, not_before: int = 0,
                      tags=()) -> dict:
    """An activation: lets account `subject` (public key) import `import_subject` (the export's
    subject or a part of it) of kind stream/service from the signing account. Sign it with the
    exporter's seed, or with one of its signing keys and `issuer_account` = the exporter."""
    nats: dict = {"subject": import_subject, "kind": kind}
    if issuer_account:
        nats["issuer_account"] = issuer_account
    if tags:
        nats["tags"] = list(tags)
    nats["type"] = ACTIVATION
    return {**_base(subject, name or import_subject, expires, not_before), "nats": nats}


def system_account_exports() -> list[dict]:
    """The two exports nsc gives a system account: account-scoped monitoring services and
    streams (the account's own id at the token position)."""
    return [
        {"name": "account-monitoring-services", "subject": "$SYS.REQ.ACCOUNT.*.*",
         "type": "service", "response_type": "Stream", "account_token_position": 4,
         "description": "Account specific monitoring services: SUBSZ, CONNZ, LEAFZ, JSZ, INFO"},
        {"name": "account-monitoring-streams", "subject": "$SYS.ACCOUNT.*.>", "type": "stream",
         "account_token_position": 3, "description": "Account specific monitoring stream"},
    ]
