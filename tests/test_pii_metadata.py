"""Call metadata through the PII policy: allowed keys pass, PII-named keys are masked whole, other values lose
the PII the detector finds (rules only: fast tier)."""

from __future__ import annotations

from speechsvc.analysis.pii import PiiPolicy, PiiRedactor, redact_metadata
from speechsvc.analysis.pii.metadata import key_type


def test_allowed_keys_pass_and_pii_never_does() -> None:
    metadata = {
        "callerPhone": "+8613812345678",
        "customer_name": "张伟",
        "From": "+86 139 1234 5678",
        "queue": "billing",
        "note": "客户说手机号是13912345678 要回电",
        "email": "zhangwei@163.com",
        "campaign": "2024Q3-retention",
        "language": "zh",
    }
    out = redact_metadata(metadata, frozenset({"queue", "language"}))
    assert out.keys() == metadata.keys()
    assert out["queue"] == "billing" and out["language"] == "zh"  # allowed: unchanged
    assert out["callerPhone"] == "[PHONE]" and out["From"] == "[PHONE]"
    assert out["customer_name"] == "[NAME]" and out["email"] == "[EMAIL]"
    assert out["note"] == "客户说手机号是[PHONE] 要回电"  # found by the detector inside free text
    assert out["campaign"] == "2024Q3-retention"  # not PII, not allowed: still passes the detector unchanged
    joined = " ".join(out.values())
    assert "13812345678" not in joined and "139" not in joined and "张伟" not in joined


def test_an_allowed_key_is_trusted_even_with_a_number() -> None:
    out = redact_metadata({"callerPhone": "13812345678"}, frozenset({"callerPhone"}))
    assert out == {"callerPhone": "13812345678"}


def test_unnamed_keys_with_a_bare_number_are_masked_by_shape() -> None:
    out = redact_metadata({"x-custom": "13812345678", "ticket": "工单号 2405 1800 3321"}, frozenset())
    assert out["x-custom"] == "[PHONE]" and out["ticket"] == "工单号 2405 1800 3321"


def test_the_policy_of_the_redactor_applies() -> None:
    mask = PiiRedactor(PiiPolicy(use_model=False, style="mask"))
    assert redact_metadata({"note": "手机13812345678"}, frozenset(), mask) == {"note": "手机138****5678"}
    phones_only = PiiRedactor(PiiPolicy(use_model=False, types=frozenset({"PHONE"})))
    out = redact_metadata({"customerName": "张伟", "mobile": "13812345678"}, frozenset(), phones_only)
    assert out == {"customerName": "张伟", "mobile": "[PHONE]"}  # NAME is not redacted by this policy


def test_key_names() -> None:
    assert key_type("callerPhone") == "PHONE" and key_type("caller_name") == "NAME"
    assert key_type("Caller") == "PHONE" and key_type("callerCity") is None and key_type("callId") is None
    assert key_type("idCard") == "ID_CARD" and key_type("bankCardNo") == "BANK_CARD"
    assert key_type("收货地址") == "ADDRESS" and key_type("company") is None and key_type("hotel") is None
