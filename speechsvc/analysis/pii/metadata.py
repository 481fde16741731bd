"""Call metadata (``callerPhone: +8613812345678``) through the PII policy before it reaches anyone: keys on the
deployment's allow-list pass through unchanged; every other value runs through the detector, and a value
whose key names a PII type (phone, name, e-mail, address, ID, card, plate, passport) is masked whole."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

import speechsvc.analysis.pii.rules as R
from speechsvc.analysis.pii.policy import PiiPolicy
from speechsvc.analysis.pii.redactor import PiiRedactor

# Words of a key that name the PII type of its value, most specific first (callerName is a name, not a phone).
_KEY_WORDS: tuple[tuple[str, frozenset[str]], ...] = (
    (R.EMAIL, frozenset({"email", "mail", "e-mail"})),
    (R.NAME, frozenset({"name", "fullname", "firstname", "lastname", "surname", "username", "姓名", "名字"})),
    (R.ADDRESS, frozenset({"address", "addr", "street", "地址"})),
    (R.PASSPORT, frozenset({"passport", "护照"})),
    (R.LICENSE_PLATE, frozenset({"plate", "车牌"})),
    (R.ID_CARD, frozenset({"idcard", "idnumber", "nationalid", "ssn", "identity", "身份证"})),
    (R.BANK_CARD, frozenset({"card", "cardno", "pan", "iban", "account", "银行卡", "卡号"})),
    (R.VERIFICATION_CODE, frozenset({"otp", "verification", "验证码"})),
    (R.PHONE, frozenset({"phone", "mobile", "tel", "telephone", "msisdn", "ani", "dnis", "cli", "callerid",
                         "手机", "电话"})),
)
# Keys that are a phone number on their own (Twilio's From/To/Caller/Called, SIP's caller and callee).
_PHONE_KEYS = frozenset({"from", "to", "caller", "called", "callee", "ani", "dnis"})


@functools.lru_cache(maxsize=1)
def _default_redactor() -> PiiRedactor:
    return PiiRedactor(PiiPolicy(use_model=False))  # numbers, e-mail, plates, passports, names by rules


def key_type(key: str) -> str | None:
    """The PII type a metadata key names (``callerPhone`` → PHONE, ``customer_name`` → NAME), else None."""
    words = [w.lower() for w in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+|[\u4e00-\u9fff]+", key)]
    joined = "".join(words)
    if joined in _PHONE_KEYS:
        return R.PHONE
    for typ, names in _KEY_WORDS:
        if any(w in names for w in words) or joined in names or any(n in joined for n in names if not n.isascii()):
            return typ
    return None


def redact_metadata(
    metadata: Mapping[str, str], allow: frozenset[str], redactor: PiiRedactor | None = None
) -> dict[str, str]:
    """A copy of a call's metadata that is safe to publish.

    Args:
        metadata: the call's metadata, as the platform sent it.
        allow: keys whose values pass through unchanged (e.g. ``queue``, ``language``); matched exactly.
        redactor: the detector to run values through (default: the rules, no model; pass the redaction
            stage's to use its policy and model).
    Returns:
        The same keys: allowed values unchanged; a value whose key names a PII type replaced whole by
        ``[TYPE]``; every other value with the PII the detector finds replaced (tag or mask, per policy).
    """
    redactor = redactor or _default_redactor()
    out: dict[str, str] = {}
    for key, value in metadata.items():
        if key in allow:
            out[key] = value
            continue
        typ = key_type(key)
        if typ is not None and typ in redactor.policy.types and value.strip():
            out[key] = f"[{typ}]"
            continue
        out[key] = redactor.redact(value).text
    return out
