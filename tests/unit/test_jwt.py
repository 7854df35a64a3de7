"""NATS JWTs, creds files, operator-mode config keys and the jwt/passwd tooling, without a server
(the config tests run `nats-server -t` as the oracle for the messages).

Compatibility vectors: a v2 user JWT written by nsc (Go jwt library) and a v1 operator JWT from
the reference's test configs; they must verify, and the v2 one must re-encode to the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess

import bcrypt
import pytest

from actor_nats import nsc
from actor_nats.config.operator import check_operator_options, parse_operator_options
from actor_nats.config.parser import parse_file
from actor_nats.protocol import creds as ncreds
from actor_nats.protocol import jwt as nj
from tests.servers import reference_binary

# nsc-written user JWT (public test data of a client library), and the reference's v1 operator
GO_USER_JWT = (
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.eyJqdGkiOiJETFRGNFpLVVdNNFRPRkVNQko0UEUzTVFFVlhIUkJJN0xZNDdZNEMzNTNMWlJKSU5CUkJRIiwiaWF0IjoxNjI0ODg1NzMwLCJpc3MiOiJBQVlKRFZMWkdXTjdZM0ZCUENWWENSVlFaREZNWUdIVTRZWExHU1hYN1UyNTRLSDVTQzNSNVFLTSIsIm5hbWUiOiJ1c2VyIiwic3ViIjoiVUQzQkdXSUJQVTNDV0w0SE9VVTRWSkVRV1RVQVNBRUc2T0ozWEhNM0VFSk5BMlBBM1VWTllUWk4iLCJuYXRzIjp7InB1YiI6e30sInN1YiI6e30sInN1YnMiOi0xLCJkYXRhIjotMSwicGF5bG9hZCI6LTEsInR5cGUiOiJ1c2VyIiwidmVyc2lvbiI6Mn19.YmFL5nRMkEOXe77sQJPPRv_vwi89tzhVVl0AVjE4sXWyoWIHiCepNw28DbpJ0p_MlT8Qf0SY2cjAhIm-Qi7lDw"
)
V1_OPERATOR_JWT = (
    "eyJ0eXAiOiJqd3QiLCJhbGciOiJlZDI1NTE5In0.eyJhdWQiOiJURVNUUyIsImV4cCI6MTg1OTEyMTI3NSwianRpIjoiWE5MWjZYWVBIVE1ESlFSTlFPSFVPSlFHV0NVN01JNVc1SlhDWk5YQllVS0VRVzY3STI1USIsImlhdCI6MTU0Mzc2MTI3NSwiaXNzIjoiT0NBVDMzTVRWVTJWVU9JTUdOR1VOWEo2NkFIMlJMU0RBRjNNVUJDWUFZNVFNSUw2NU5RTTZYUUciLCJuYW1lIjoiU3luYWRpYSBDb21tdW5pY2F0aW9ucyBJbmMuIiwibmJmIjoxNTQzNzYxMjc1LCJzdWIiOiJPQ0FUMzNNVFZVMlZVT0lNR05HVU5YSjY2QUgyUkxTREFGM01VQkNZQVk1UU1JTDY1TlFNNlhRRyIsInR5cGUiOiJvcGVyYXRvciIsIm5hdHMiOnsic2lnbmluZ19rZXlzIjpbIk9EU0tSN01ZRlFaNU1NQUo2RlBNRUVUQ1RFM1JJSE9GTFRZUEpSTUFWVk40T0xWMllZQU1IQ0FDIiwiT0RTS0FDU1JCV1A1MzdEWkRSVko2NTdKT0lHT1BPUTZLRzdUNEhONk9LNEY2SUVDR1hEQUhOUDIiLCJPRFNLSTM2TFpCNDRPWTVJVkNSNlA1MkZaSlpZTVlXWlZXTlVEVExFWjVUSzJQTjNPRU1SVEFCUiJdfX0.hyfz6E39BMUh0GLzovFfk3wT4OfualftjdJ_eYkLfPvu5tZubYQ_Pn9oFYGCV_6yKy3KMGhWGUCyCdHaPhalBw"
)

NOW = 1_700_000_000


def b64json(segment: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


@pytest.fixture(scope="module")
def keys():
    k = {kind: nj.create_seed(kind) for kind in ("operator", "account", "user")}
    k["account2"] = nj.create_seed("account")
    k["operator2"] = nj.create_seed("operator")
    k["op_signing"] = nj.create_seed("operator")
    k["acc_signing"] = nj.create_seed("account")
    return k


def pub(seed):
    return nj.public_key(seed)


# -- nkeys ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind,prefix", [("operator", "O"), ("account", "A"), ("user", "U")])
def test_seeds_and_public_keys(kind, prefix):
    seed = nj.create_seed(kind)
    assert seed.startswith("S" + prefix) and len(seed) == 58
    key = nj.public_key(seed)
    assert key.startswith(prefix) and len(key) == 56
    assert nj.key_kind(key) == kind and nj.is_public_key(key, kind)


def test_public_key_checksum_and_garbage():
    key = nj.public_key(nj.create_seed("user"))
    flipped = key[:10] + ("A" if key[10] != "A" else "B") + key[11:]
    assert nj.key_kind(flipped) is None
    assert nj.key_kind("UXXX") is None and nj.key_kind(5) is None
    with pytest.raises(nj.JWTError):
        nj.public_key("SUnotaseed")


# -- encode / decode ------------------------------------------------------------------------

def test_round_trip_operator_account_user(keys):
    op, acc, usr = keys["operator"], keys["account"], keys["user"]
    op_jwt = nj.encode(nj.operator_claims(pub(op), "O", system_account=pub(acc),
                                          signing_keys=[pub(keys["op_signing"])]), op, NOW)
    acc_jwt = nj.encode(nj.account_claims(pub(acc), "A"), op, NOW)
    usr_jwt = nj.encode(nj.user_claims(pub(usr), "u", pub_allow=["foo.>"], sub_deny=["bar"]), acc, NOW)
    o, a, u = nj.decode(op_jwt), nj.decode(acc_jwt), nj.decode(usr_jwt)
    assert (o.type, o.subject, o.issuer, o.name, o.issued_at) == ("operator", pub(op), pub(op), "O", NOW)
    assert o.system_account == pub(acc) and o.signing_keys == (pub(keys["op_signing"]),)
    assert (a.type, a.subject, a.issuer) == ("account", pub(acc), pub(op))
    assert (u.type, u.subject, u.issuer) == ("user", pub(usr), pub(acc))
    assert u.nats["pub"] == {"allow": ["foo.>"]} and u.nats["sub"] == {"deny": ["bar"]}
    assert o.did_sign(a) and a.did_sign(u)


def test_header_and_segments(keys):
    token = nj.encode(nj.account_claims(pub(keys["account"]), "A"), keys["operator"], NOW)
    head, body, sig = token.split(".")
    assert base64.urlsafe_b64decode(head + "==") == b'{"typ":"JWT","alg":"ed25519-nkey"}'
    assert "=" not in token and len(base64.urlsafe_b64decode(sig + "==")) == 64
    claims = b64json(body)
    assert list(claims) == ["jti", "iat", "iss", "name", "sub", "nats"]
    assert list(claims["nats"])[-2:] == ["type", "version"] and claims["nats"]["version"] == 2


def test_jti_is_sha512_256_of_common_claims(keys):
    token = nj.encode(nj.user_claims(pub(keys["user"]), "u<&>", expires=NOW + 60), keys["account"], NOW)
    claims = b64json(token.split(".")[1])
    common = {k: claims[k] for k in ("exp", "iat", "iss", "name", "sub")}
    text = json.dumps(common, separators=(",", ":")).replace("<", "\\u003c").replace(">", "\\u003e") \
        .replace("&", "\\u0026")
    digest = hashlib.new("sha512_256", text.encode()).digest()
    assert claims["jti"] == base64.b32encode(digest).decode().rstrip("=")


def test_account_defaults_as_nsc_writes_them(keys):
    claims = b64json(nj.encode(nj.account_claims(pub(keys["account"]), "A"), keys["operator"], NOW).split(".")[1])
    assert claims["nats"] == {
        "limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                   "wildcards": True, "conn": -1, "leaf": -1},
        "default_permissions": {"pub": {}, "sub": {}}, "authorization": {},
        "type": "account", "version": 2}
    js = nj.account_limits(mem_storage=-1, disk_storage=1 << 30, streams=10, consumer=-1)
    assert js["mem_storage"] == -1 and js["disk_storage"] == 1 << 30 and js["streams"] == 10
    with pytest.raises(ValueError):
        nj.account_limits(bogus=1)


def test_user_claims_fields(keys):
    c = nj.user_claims(pub(keys["user"]), "u", resp=(1, 2.5), src=["10.0.0.0/8"],
                       times=[("08:00:00", "17:00:00")], bearer_token=True,
                       issuer_account=pub(keys["account"]), allowed_connection_types=["STANDARD"])
    n = c["nats"]
    assert n["resp"] == {"max": 1, "ttl": 2_500_000_000}
    assert n["times"] == [{"start": "08:00:00", "end": "17:00:00"}] and n["bearer_token"] is True
    assert n["subs"] == n["data"] == n["payload"] == -1


def test_go_written_user_jwt_verifies_and_re_encodes_byte_for_byte():
    claims = nj.decode(GO_USER_JWT)
    assert claims.type == "user" and claims.name == "user" and claims.issued_at == 1624885730
    body = GO_USER_JWT.split(".")[1]
    assert nj.claims_hash(b64json(body)) == claims.jti
    ours = nj.payload_bytes(nj.user_claims(claims.subject, "user"), claims.issuer, claims.issued_at)
    assert ours == base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


def test_v1_operator_jwt_from_the_reference_decodes():
    claims = nj.decode(V1_OPERATOR_JWT)
    assert claims.type == "operator" and claims.version == 1 and len(claims.signing_keys) == 3
    assert claims.audience == "TESTS" and claims.not_before == 1543761275
    tampered = V1_OPERATOR_JWT[:-4] + ("AAAA" if not V1_OPERATOR_JWT.endswith("AAAA") else "BBBB")
    with pytest.raises(nj.JWTError, match="claim failed V1 signature verification"):
        nj.decode(tampered)


# -- verification failures ------------------------------------------------------------------

def test_tampered_claims_fail_signature(keys):
    token = nj.encode(nj.user_claims(pub(keys["user"]), "u"), keys["account"], NOW)
    head, body, sig = token.split(".")
    claims = b64json(body)
    claims["nats"]["pub"] = {"allow": [">"]}
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    with pytest.raises(nj.JWTError, match="^claim failed V2 signature verification$"):
        nj.decode(f"{head}.{forged}.{sig}")


def test_issuer_role_rules(keys):
    with pytest.raises(nj.JWTError, match=re.escape("unable to validate expected prefixes - [account]")):
        nj.encode(nj.user_claims(pub(keys["user"]), "u"), keys["operator"], NOW)
    with pytest.raises(nj.JWTError, match=re.escape("[account operator]")):
        nj.encode(nj.account_claims(pub(keys["account"]), "A"), keys["user"], NOW)
    with pytest.raises(nj.JWTError, match="expected subject to be account public key"):
        nj.encode(nj.account_claims(pub(keys["user"]), "A"), keys["operator"], NOW)
    # a correctly signed user JWT whose issuer is an operator is refused on decode too
    body = nj.payload_bytes(nj.user_claims(pub(keys["user"]), "u"), pub(keys["operator"]), NOW)
    token = nj._JWS.encode(body, keys["operator"], algorithm=nj.ALGORITHM,
                           headers={"typ": "JWT", "alg": nj.ALGORITHM}, sort_headers=False)
    with pytest.raises(nj.JWTError, match=re.escape("unable to validate expected prefixes - [account]")):
        nj.decode(token)


@pytest.mark.parametrize("token,message", [
    ("abc", "expected 3 chunks"),
    ("a.b.c.d", "expected 3 chunks"),
    ("eyJhbGciOi.xx.yy", "unexpected end of JSON input"),
])
def test_malformed_tokens(token, message):
    with pytest.raises(nj.JWTError, match=re.escape(message)):
        nj.decode(token)


def test_wrong_header(keys):
    token = nj.encode(nj.user_claims(pub(keys["user"]), "u"), keys["account"], NOW)
    for header, message in (({"typ": "JWT", "alg": "HS256"}, 'unexpected "HS256" algorithm'),
                            ({"typ": "JWS", "alg": "ed25519-nkey"}, 'not supported type "JWS"')):
        h = base64.urlsafe_b64encode(json.dumps(header).encode()).decode().rstrip("=")
        with pytest.raises(nj.JWTError, match=re.escape(message)):
            nj.decode(h + token[token.index("."):])


def test_account_trust_and_expiry(keys):
    op, op2 = keys["operator"], keys["operator2"]
    acc_jwt = nj.encode(nj.account_claims(pub(keys["account"]), "A"), op, NOW)
    assert nj.verify_account(acc_jwt, [pub(op)], NOW).subject == pub(keys["account"])
    with pytest.raises(nj.JWTError, match="^not trusted$"):
        nj.verify_account(acc_jwt, [pub(op2)], NOW)
    with pytest.raises(nj.JWTError, match="not account claim"):
        nj.verify_account(nj.encode(nj.operator_claims(pub(op), "O"), op, NOW), [pub(op)], NOW)
    expired = nj.encode(nj.account_claims(pub(keys["account"]), "A", expires=NOW + 10), op, NOW)
    assert nj.validate(nj.decode(expired), NOW + 5) == []
    with pytest.raises(nj.JWTError, match="^claim is expired$"):
        nj.verify_account(expired, [pub(op)], NOW + 11)
    early = nj.encode(nj.account_claims(pub(keys["account"]), "A", not_before=NOW + 10), op, NOW)
    assert nj.validate(nj.decode(early), NOW) == ["claim is not yet valid"]


def test_signing_keys(keys):
    op, sk = keys["operator"], keys["op_signing"]
    op_claims = nj.decode(nj.encode(nj.operator_claims(pub(op), "O", signing_keys=[pub(sk)]), op, NOW))
    acc_jwt = nj.encode(nj.account_claims(pub(keys["account"]), "A",
                                          signing_keys=[pub(keys["acc_signing"])]), sk, NOW)
    from actor_nats.config.operator import OperatorOptions
    trusted = OperatorOptions(operators=(op_claims,)).all_trusted_keys()
    account = nj.verify_account(acc_jwt, trusted, NOW)
    assert op_claims.did_sign(account)
    # a user signed by the account's signing key names the account in issuer_account
    usr = nj.encode(nj.user_claims(pub(keys["user"]), "u", issuer_account=pub(keys["account"])),
                    keys["acc_signing"], NOW)
    assert nj.verify_user(usr, account, NOW).issuer == pub(keys["acc_signing"])
    stranger = nj.encode(nj.user_claims(pub(keys["user"]), "u"), keys["account2"], NOW)
    with pytest.raises(nj.JWTError, match="user JWT issuer is not known"):
        nj.verify_user(stranger, account, NOW)


def test_revocation(keys):
    acc, usr = keys["account"], keys["user"]
    user_jwt = nj.encode(nj.user_claims(pub(usr), "u"), acc, NOW)
    revoked = nj.decode(nj.encode(nj.account_claims(pub(acc), "A", revocations={pub(usr): NOW}),
                                  keys["operator"], NOW))
    with pytest.raises(nj.JWTError, match="revoked"):
        nj.verify_user(user_jwt, revoked, NOW)
    later = nj.encode(nj.user_claims(pub(usr), "u"), acc, NOW + 1)
    assert nj.verify_user(later, revoked, NOW + 1)


def test_validation_of_permissions(keys):
    token = nj.encode(nj.user_claims(pub(keys["user"]), "u", pub_allow=["a..b", "x q"],
                                     src=["nope"]), keys["account"], NOW)
    assert nj.validate(nj.decode(token), NOW) == [
        'subject "a..b" cannot contain consecutive `.`',
        'Permission Subject "x q" is not allowed to contain queue',
        'invalid cidr "nope" in user src limits']


# -- creds ----------------------------------------------------------------------------------

def test_creds_text_exactly_as_nsc_writes_it(keys):
    token = nj.encode(nj.user_claims(pub(keys["user"]), "u"), keys["account"], NOW)
    text = ncreds.format_user_creds(token, keys["user"])
    assert text == (
        f"-----BEGIN NATS USER JWT-----\n{token}\n------END NATS USER JWT------\n\n"
        "************************* IMPORTANT *************************\n"
        "NKEY Seed printed below can be used to sign and prove identity.\n"
        "NKEYs are sensitive and should be treated as secrets.\n\n"
        f"-----BEGIN USER NKEY SEED-----\n{keys['user']}\n------END USER NKEY SEED------\n\n"
        "*************************************************************\n")
    assert ncreds.parse_creds(text) == (token, keys["user"])
    assert ncreds.parse_creds(text.replace("\n", "\r\n")) == (token, keys["user"])


def test_creds_errors(keys):
    token = nj.encode(nj.user_claims(pub(keys["user"]), "u"), keys["account"], NOW)
    with pytest.raises(ncreds.CredsError, match="^no nkey seed found$"):
        ncreds.parse_creds(ncreds.decorate_jwt(token))
    with pytest.raises(ncreds.CredsError, match="^doesn't contain an user seed nkey$"):
        ncreds.parse_creds(ncreds.decorate_jwt(token) + ncreds.decorate_seed(keys["account"]))
    with pytest.raises(ncreds.CredsError, match="nkey seed is not an user seed"):
        ncreds.format_user_creds(token, keys["account"])
    assert ncreds.parse_jwt(token + "\n") == token  # an undecorated JWT file
    assert ncreds.parse_seed("garbage\n" + keys["user"] + "\n") == keys["user"]


def test_nats_py_reads_our_creds(keys, tmp_path):
    """nats-py's own creds reader (used for user_credentials=) finds our JWT and seed."""
    from nats.aio.client import Client

    token = nj.encode(nj.user_claims(pub(keys["user"]), "u"), keys["account"], NOW)
    path = tmp_path / "u.creds"
    path.write_text(ncreds.format_user_creds(token, keys["user"]))
    nc = Client()
    nc._user_credentials = str(path)
    nc._setup_nkeys_jwt_connect()
    assert bytes(nc._user_jwt_cb()).decode().strip() == token
    signature = base64.b64decode(nc._signature_cb("nonce"))
    algorithm = nj.NkeyAlgorithm()
    assert algorithm.verify(b"nonce", algorithm.prepare_key(pub(keys["user"])), signature)


# -- config/operator.py against `nats-server -t` --------------------------------------------

@pytest.fixture(scope="module")
def op_env(tmp_path_factory):
    d = tmp_path_factory.mktemp("opconf")
    store = nsc.Store(d / "store")
    nsc.init(store)
    nsc.add_account(store, "A")
    nsc.add_user(store, "A", "u")
    op_seed = nj.create_seed("operator")
    (d / "nosys.jwt").write_text(nj.encode(nj.operator_claims(pub(op_seed), "N"), op_seed))
    (d / "ver.jwt").write_text(nj.encode(nj.operator_claims(pub(op_seed), "V", assert_server_version="2.99.0"), op_seed))
    (d / "afile").write_text("x")
    (d / "jwtdir").mkdir()
    _, op = store.operator()
    return {"dir": d, "op": op.token, "op_file": str(d / "store" / "operator.jwt"),
            "sys": op.system_account, "acc": store.account("A")[1].token,
            "user": store.user("A", "u")[1], "nosys": str(d / "nosys.jwt"),
            "ver": str(d / "ver.jwt"), "afile": str(d / "afile"), "jwtdir": str(d / "jwtdir")}


CHECK_CASES = {
    "op_file": "operator: {op_file}\nresolver: MEMORY",
    "op_inline": "operator: {op}\nresolver: MEM",
    "op_list": "operator: [\"{op_file}\"]\nresolver: MEMORY",
    "op_missing": "operator: {dir}/nope.jwt\nresolver: MEMORY",
    "op_int": "operator: 5\nresolver: MEMORY",
    "op_account_jwt": "operator: {acc}\nresolver: MEMORY",
    "op_bad": "operator: eyJhbGciOi.xx.yy\nresolver: MEMORY",
    "res_bad": "operator: {op}\nresolver: FOO",
    "res_int": "operator: {op}\nresolver: 5",
    "res_full": "operator: {op}\nresolver: {{type: full, dir: '{jwtdir}', allow_delete: true, interval: \"2m\", timeout: \"1.9s\"}}",
    "res_cache": "operator: {op}\nresolver: {{type: cache, dir: '{jwtdir}', ttl: \"1h\", limit: 10}}",
    "res_nodir": "operator: {op}\nresolver: {{type: full}}",
    "res_cache_del": "operator: {op}\nresolver: {{type: cache, dir: '{jwtdir}', allow_delete: true, interval: \"1m\"}}",
    "res_full_ttl": "operator: {op}\nresolver: {{type: full, dir: '{jwtdir}', ttl: \"1m\"}}",
    "res_bad_interval": "operator: {op}\nresolver: {{type: full, dir: '{jwtdir}', interval: \"xx\"}}",
    "res_bad_type": "operator: {op}\nresolver: {{type: other, dir: '{jwtdir}'}}",
    "res_file_dir": "operator: {op}\nresolver: {{type: full, dir: '{afile}'}}",
    "pre_ok": "operator: {op}\nresolver: MEMORY\nresolver_preload: {{ {sys}: {acc} }}",
    "pre_notmap": "operator: {op}\nresolver: MEMORY\nresolver_preload: 5",
    "pre_bad": "operator: {op}\nresolver: MEMORY\nresolver_preload: {{ {sys}: 5, AB: \"xx\" }}",
    "pre_user": "operator: {op}\nresolver: MEMORY\nresolver_preload: {{ {sys}: {user} }}",
    "trusted_str": "trusted: OXX",
    "trusted_int": "trusted: 5",
    "trusted_list": "trusted_keys: [\n  \"OXX\"\n  5\n]",
    "pinned_bad": "operator: {op}\nresolver: MEMORY\nresolver_pinned_accounts: [\n  {sys}\n  1\n]",
}


def _reference_check(path) -> str:
    out = subprocess.run([reference_binary(), "-t", "-c", str(path)], capture_output=True,
                         text=True, timeout=20).stderr.strip()
    if "is valid" in out:
        return ""
    return re.sub(r"^nats-server: ", "", out)


@pytest.mark.parametrize("name", sorted(CHECK_CASES))
def test_config_errors_match_reference(name, op_env):
    path = op_env["dir"] / f"{name}.conf"
    path.write_text(CHECK_CASES[name].format(**op_env) + "\n")
    _, errors = parse_operator_options(parse_file(str(path)))
    # the reference walks maps (resolver_preload) in Go's random order: compare as sets of lines
    assert sorted(errors) == sorted(filter(None, _reference_check(path).split("\n")))


def test_parsed_values(op_env, tmp_path):
    path = tmp_path / "ok.conf"
    path.write_text(CHECK_CASES["res_full"].format(**op_env)
                    + f"\nresolver_preload: {{ {op_env['sys']}: {op_env['acc']} }}\n")
    op, errors = parse_operator_options(parse_file(str(path)))
    assert errors == []
    assert op.enabled and op.system_account == op_env["sys"]
    assert (op.resolver.type, op.resolver.dir, op.resolver.allow_delete, op.resolver.interval,
            op.resolver.timeout) == ("FULL", op_env["jwtdir"], True, 120.0, 1.9)
    assert op.preload == ((op_env["sys"], op_env["acc"]),)
    assert op.all_trusted_keys() == (op.operators[0].subject,)


def test_url_resolver_is_refused_clearly(op_env, tmp_path):
    path = tmp_path / "url.conf"
    path.write_text(f"operator: {op_env['op']}\nresolver: URL(http://127.0.0.1:9090/jwt/v1/accounts/)\n")
    _, errors = parse_operator_options(parse_file(str(path)))
    assert len(errors) == 1 and errors[0].endswith(
        "resolver URL(http://127.0.0.1:9090/jwt/v1/accounts/) is not supported by actor-nats yet "
        "(use MEMORY or a nats based resolver: { type: full, dir: ... })")


START_CASES = {
    "mismatch": ("operator: {op}\nsystem_account: AAXRJTOA3U3FCFQEOSDSCPBQBSMMG7K4F3NQR6OGW6MJBSZV4VGQSVXA\n"
                 "resolver: MEMORY", "AAXRJTOA3U3FCFQEOSDSCPBQBSMMG7K4F3NQR6OGW6MJBSZV4VGQSVXA"),
    "nosys_full": ("operator: {nosys}\nresolver: {{type: full, dir: '{jwtdir}'}}", ""),
    "version": ("operator: {ver}\nresolver: MEMORY", ""),
    "no_resolver": ("operator: {op}", ""),
}


@pytest.mark.parametrize("name", sorted(START_CASES))
def test_start_errors_match_reference(name, op_env):
    text, system_account = START_CASES[name]
    path = op_env["dir"] / f"start_{name}.conf"
    path.write_text(text.format(**op_env) + "\nport: -1\n")
    op, errors = parse_operator_options(parse_file(str(path)))
    assert errors == []
    ours = check_operator_options(op, system_account=system_account)
    proc = subprocess.run([reference_binary(), "-c", str(path)], capture_output=True, text=True,
                          timeout=20)
    assert proc.returncode != 0
    assert ours == [re.sub(r"^nats-server: ", "", proc.stderr.strip().splitlines()[-1])]


def test_start_checks_for_static_auth(op_env, tmp_path):
    path = tmp_path / "s.conf"
    path.write_text(f"operator: {op_env['op']}\nresolver: MEMORY\n")
    op, _ = parse_operator_options(parse_file(str(path)))
    assert check_operator_options(op) == []
    assert check_operator_options(op, has_users=True) == ["operators do not allow users to be configured directly"]
    assert check_operator_options(op, has_accounts=True) == [
        "operators do not allow Accounts to be configured directly"]


# -- tooling --------------------------------------------------------------------------------

def test_passwd_hash(capsys):
    assert nsc.main(["passwd", "--password", "s3cr3t-passw0rd"]) == 0
    out = capsys.readouterr().out.strip()
    assert re.fullmatch(r"\$2a\$11\$[./A-Za-z0-9]{53}", out)
    assert bcrypt.checkpw(b"s3cr3t-passw0rd", out.encode())


def test_store_init_account_user(tmp_path, capsys):
    store = tmp_path / "nsc"
    assert nsc.main(["jwt", "init", "--store", str(store), "--name", "ACME"]) == 0
    assert nsc.main(["jwt", "add", "account", "A", "--store", str(store), "--js-mem-storage", "512M",
                     "--js-disk-storage", "-1", "--js-streams", "10", "--js-consumer", "-1"]) == 0
    assert nsc.main(["jwt", "add", "user", "u", "-a", "A", "--store", str(store), "--allow-pub", "foo.>",
                     "--allow-sub", "foo.>,_INBOX.>", "--deny-sub", "foo.secret"]) == 0
    assert nsc.main(["jwt", "add", "account", "A", "--store", str(store)]) == 1
    assert "account 'A' already exists" in capsys.readouterr().err
    s = nsc.Store(store)
    _, op = s.operator()
    assert op.name == "ACME" and s.system_account_name() == "SYS"
    sys_acc = s.account("SYS")[1]
    assert op.system_account == sys_acc.subject and len(sys_acc.nats["exports"]) == 2
    acc = s.account("A")[1]
    assert {k: acc.nats["limits"][k] for k in ("mem_storage", "disk_storage", "streams", "consumer")} == \
        {"mem_storage": 512 << 20, "disk_storage": -1, "streams": 10, "consumer": -1}
    user = nj.verify_user(s.user("A", "u")[1], acc)
    assert user.nats["pub"] == {"allow": ["foo.>"]}
    assert user.nats["sub"] == {"allow": ["foo.>", "_INBOX.>"], "deny": ["foo.secret"]}
    creds = (store / "accounts" / "A" / "users" / "u.creds")
    assert ncreds.parse_creds(creds.read_text())[0] == s.user("A", "u")[1]
    assert oct(creds.stat().st_mode & 0o777) == "0o600"
    conf = nsc.resolver_config(s, "/var/jwt")
    assert f"operator: {op.token}\n" in conf and f"system_account: {sys_acc.subject}\n" in conf
    assert "dir: '/var/jwt'" in conf and f"{sys_acc.subject}: {sys_acc.token}," in conf


def test_store_errors(tmp_path, capsys):
    store = str(tmp_path / "none")
    assert nsc.main(["jwt", "add", "account", "A", "--store", store]) == 1
    assert "no operator in" in capsys.readouterr().err
    assert nsc.main(["jwt", "describe", "not-a-jwt"]) == 1
    assert "expected 3 chunks" in capsys.readouterr().err


# -- activations, exports and imports -------------------------------------------------------

@pytest.fixture
def sharing():
    """Exporter A (with a signing key), importer B, bystander C."""
    k = {n: nj.create_seed("account") for n in ("A", "B", "C", "A_sk")}
    k.update({n.lower(): pub(s) for n, s in k.items()})
    return k


def exporter_claims(k, exports, signing_keys=()):
    op = nj.create_seed("operator")
    return nj.decode(nj.encode(nj.account_claims(k["a"], "A", exports=exports,
                                                 signing_keys=signing_keys), op, NOW))


def test_activation_encode_decode(sharing):
    k = sharing
    token = nj.encode(nj.activation_claims(k["b"], "priv.>", "stream", expires=NOW + 60), k["A"], NOW)
    claims = nj.decode_as(token, nj.ACTIVATION)
    assert (claims.subject, claims.issuer, claims.expires) == (k["b"], k["a"], NOW + 60)
    assert dict(claims.nats) == {"subject": "priv.>", "kind": "stream", "type": "activation", "version": 2}
    assert b64json(token.split(".")[1])["name"] == "priv.>"
    assert nj.validate(claims, NOW) == []
    assert nj.validate(claims, NOW + 61) == ["claim is expired"]
    with pytest.raises(nj.JWTError, match="expected subject to be an account"):
        nj.encode(nj.activation_claims(pub(nj.create_seed("user")), "x", "stream"), k["A"])
    with pytest.raises(nj.JWTError, match="unable to validate expected prefixes"):
        nj.encode(nj.activation_claims(k["b"], "x", "stream"), nj.create_seed("user"))
    bad = nj.decode(nj.encode(nj.activation_claims(k["b"], "x", "queue"), k["A"]))
    assert nj.validate(bad) == ['invalid export type: "queue"']


@pytest.mark.parametrize("subject,pattern,contained", [
    ("a.b", "a.b", True), ("a.b", "a.*", True), ("a.b.c", "a.>", True), ("a.*", "a.>", True),
    ("a.>", "a.>", True), ("a.*", "a.*", True), ("a", "a.>", False), ("a.>", "a.*", False),
    ("a.b", "a.c", False), ("a.*", "a.b", False), ("a.b.c", "a.*", False), ("a", "a.b", False),
])
def test_subject_contained_in(subject, pattern, contained):
    assert nj.subject_contained_in(subject, pattern) is contained


def test_import_issues(sharing):
    k = sharing

    def act(target="b", subject="priv.>", kind="stream", key="A", **kw):
        return nj.encode(nj.activation_claims(k[target], subject, kind, **kw), k[key])

    def issues(token, **kw):
        return nj.import_issues(nj.import_claim(k["a"], "priv.>", token=token, **kw), k["b"])

    assert issues(act()) == []
    assert issues(act(expires=NOW)) == []  # expiry is the server's check, not the JWT's
    assert issues(act(key="A_sk", issuer_account=k["a"])) == []
    assert issues(act(target="c")) == [
        'activation token doesn\'t match account it is being included in, "priv.>"']
    assert issues(act(key="C")) == ['activation token doesn\'t match account for import "priv.>"']
    assert issues(act(kind="service")) == [
        "mismatch between token import type service and type of import stream"]
    assert issues(act(subject="priv.x")) == [
        'activation token import subject "priv.x" doesn\'t match import "priv.>"']
    assert issues("junk") == ['import "priv.>" contains an invalid activation token']
    assert nj.import_issues({"subject": "x", "type": "queue"}, k["b"]) == [
        'invalid import type: "queue"', "account to import from is not specified"]
    # an account JWT carrying a bad import does not validate
    op = nj.create_seed("operator")
    bad = nj.decode(nj.encode(nj.account_claims(
        k["b"], "B", imports=[nj.import_claim(k["a"], "priv.>", token=act(target="c"))]), op))
    assert nj.validate(bad) == ['activation token doesn\'t match account it is being included in, "priv.>"']


def test_check_import(sharing):
    k = sharing
    exports = [nj.export_claim("pub.>"), nj.export_claim("priv.>", token_req=True),
               nj.export_claim("svc.*", service=True, token_req=True, response_type="Stream"),
               nj.export_claim("acc.*.>", account_token_position=2)]
    a = exporter_claims(k, exports, signing_keys=[k["a_sk"]])

    def act(target="b", subject="priv.>", kind="stream", key="A", **kw):
        return nj.encode(nj.activation_claims(k[target], subject, kind, **kw), k[key], NOW)

    def check(subject, token="", service=False, importer="b", exporter=a):
        imp = nj.import_claim(k["a"], subject, service=service, token=token)
        return nj.check_import(exporter, k[importer], imp, NOW + 1)

    assert check("pub.>") == ("", 0)
    assert check("pub.x.y") == ("", 0)  # a part of a public export
    assert check("nope") == ("stream import not authorized", 0)
    assert check("priv.>", service=True)[0] == "service import not authorized"  # kind differs
    assert check("priv.>")[0] == "stream import not authorized (no activation token)"
    assert check("priv.>", act()) == ("", 0)
    assert check("priv.>", act(expires=NOW + 100)) == ("", NOW + 100)
    assert check("priv.x", act(subject="priv.x")) == ("", 0)  # a subset of the export
    assert check("priv.>", act(expires=NOW))[0] == "stream import not authorized (claim is expired)"
    assert check("priv.>", act(target="c"))[0].startswith("stream import not authorized (activation")
    assert check("priv.>", act(key="A_sk", issuer_account=k["a"])) == ("", 0)
    untrusted = act(key="C", issuer_account=k["a"])  # names A, but C's key is not A's
    assert check("priv.>", untrusted)[0] == "stream import not authorized (activation signed by an unknown key)"
    svc = act(subject="svc.echo", kind="service")
    assert check("svc.echo", svc, service=True) == ("", 0)
    assert check("acc.%s.x" % k["b"]) == ("", 0)
    assert check("acc.%s.x" % k["c"])[0] == "stream import not authorized"
    assert check("acc.*.>")[0] == "stream import not authorized"
    assert nj.check_import(None, k["b"], nj.import_claim(k["a"], "pub.>"), NOW)[0] == "account not found"
    # revocations on the export: the importer's key or "*", at or after the activation's iat
    for who, at, revoked in ((k["b"], NOW, True), ("*", NOW, True), (k["b"], NOW - 1, False),
                             (k["c"], NOW, False)):
        revoking = exporter_claims(k, [nj.export_claim("priv.>", token_req=True, revocations={who: at})])
        reason, _ = check("priv.>", act(), exporter=revoking)
        assert (reason == "stream import not authorized (activation revoked)") is revoked, (who, at)


def test_tooling_exports_imports_activations(tmp_path):
    store = nsc.Store(tmp_path / "nsc")
    nsc.init(store, now=NOW)
    for name in ("A", "B"):
        nsc.add_account(store, name, now=NOW)
    a = nsc.add_export(store, "A", "priv.>", private=True, now=NOW + 1)
    a = nsc.add_export(store, "A", "svc.echo", service=True, response_type="chunked", now=NOW + 1)
    assert a.nats["exports"] == [
        {"name": "priv.>", "subject": "priv.>", "type": "stream", "token_req": True},
        {"name": "svc.echo", "subject": "svc.echo", "type": "service", "response_type": "Chunked"}]
    assert list(a.nats)[:2] == ["exports", "limits"]  # Go's field order kept
    with pytest.raises(nsc.ToolError, match="already exports"):
        nsc.add_export(store, "A", "priv.>")
    with pytest.raises(nsc.ToolError, match="is private"):
        nsc.add_import(store, "B", "A", "priv.>")
    with pytest.raises(nsc.ToolError, match="no stream export"):
        nsc.add_import(store, "B", "A", "other")
    token = nsc.generate_activation(store, "A", "priv.x", "B", now=NOW + 2)
    act = nj.decode_as(token, nj.ACTIVATION)
    assert (act.subject, act.nats["subject"], act.nats["kind"]) == (store.account("B")[1].subject,
                                                                   "priv.x", "stream")
    with pytest.raises(nsc.ToolError, match="no export containing"):
        nsc.generate_activation(store, "A", "other", "B")
    with pytest.raises(nsc.ToolError, match="doesn't match account it is being included in"):
        nsc.add_import(store, "A", "B", "priv.x", token=token)  # (A cannot use B's token)
    b = nsc.add_import(store, "B", store.account("A")[1].subject, "priv.x", token=token,
                       now=NOW + 3)
    b = nsc.add_import(store, "B", "A", "svc.echo", service=True, local_subject="echo", now=NOW + 3)
    imports = b.nats["imports"]
    assert [(i["subject"], i["type"], i.get("local_subject"), bool(i.get("token"))) for i in imports] == [
        ("priv.x", "stream", None, True), ("svc.echo", "service", "echo", False)]
    assert nj.validate(b, NOW + 4) == []
    exporter = store.account("A")[1]
    assert nj.check_import(exporter, b.subject, imports[0], NOW + 4) == ("", 0)
