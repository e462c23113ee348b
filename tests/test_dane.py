"""DANE TLSA matching (RFC 6698/7671/7672) against real trustme chains."""

from __future__ import annotations

import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from smtpcli.probe.dane import (
    DaneState,
    TlsaRecord,
    association_data,
    make_tlsa,
    match_tlsa,
    tlsa_name,
)
from tests.servers.certs import TlsCerts


def _der_chain(pem: bytes) -> list[bytes]:
    return [
        c.public_bytes(serialization.Encoding.DER) for c in x509.load_pem_x509_certificates(pem)
    ]


@pytest.fixture
def chain(tls_certs: TlsCerts) -> list[bytes]:
    """Leaf as presented plus the CA (what a server sending its full chain presents)."""
    leaf = _der_chain(tls_certs.valid.cert_path.read_bytes())
    ca = _der_chain(tls_certs.ca_path.read_bytes())
    return leaf + ca


def test_tlsa_name() -> None:
    assert tlsa_name("mx1.example.test.") == "_25._tcp.mx1.example.test."
    assert tlsa_name("mx1.example.test", 465) == "_465._tcp.mx1.example.test."


@pytest.mark.parametrize("selector", [0, 1])
@pytest.mark.parametrize("mtype", [0, 1, 2])
def test_dane_ee_matches_leaf_every_selector_and_mtype(
    chain: list[bytes], selector: int, mtype: int
) -> None:
    record = make_tlsa(chain[0], 3, selector, mtype)
    result = match_tlsa([record], chain)
    assert result.state is DaneState.MATCH
    assert result.matched[0]["depth"] == 0
    assert result.matched[0]["usage"] == "DANE-EE"


def test_sha256_spki_is_what_openssl_computes(chain: list[bytes]) -> None:
    cert = x509.load_der_x509_certificate(chain[0])
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert association_data(chain[0], 1, 1) == hashlib.sha256(spki).digest()
    assert association_data(chain[0], 0, 2) == hashlib.sha512(chain[0]).digest()


def test_dane_ee_does_not_match_the_ca(chain: list[bytes]) -> None:
    record = make_tlsa(chain[1], 3, 1, 1)
    assert match_tlsa([record], chain).state is DaneState.MISMATCH


def test_dane_ta_matches_the_issuer_and_not_the_leaf(chain: list[bytes]) -> None:
    ta = make_tlsa(chain[1], 2, 0, 1)
    result = match_tlsa([ta], chain)
    assert result.state is DaneState.MATCH
    assert result.matched[0]["depth"] == 1
    leaf_as_ta = make_tlsa(chain[0], 2, 1, 1)
    assert match_tlsa([leaf_as_ta], chain).state is DaneState.MISMATCH


def test_dane_ta_needs_a_chain_that_links(chain: list[bytes], tls_certs: TlsCerts) -> None:
    # The self-signed leaf is not issued by the CA: a TA record for the CA must not match it.
    stranger = _der_chain(tls_certs.self_signed.cert_path.read_bytes())
    result = match_tlsa([make_tlsa(chain[1], 2, 1, 1)], stranger + [chain[1]])
    assert result.state is DaneState.MISMATCH
    assert "does not link" in " ".join(result.notes)


def test_pkix_usages_are_unusable_for_smtp(chain: list[bytes]) -> None:
    records = [make_tlsa(chain[0], 1, 1, 1), make_tlsa(chain[1], 0, 1, 1)]
    result = match_tlsa(records, chain)
    assert result.state is DaneState.UNUSABLE
    assert len(result.unusable) == 2


def test_one_matching_record_in_a_set_is_enough(chain: list[bytes]) -> None:
    wrong = TlsaRecord(3, 1, 1, b"\x00" * 32)
    right = make_tlsa(chain[0], 3, 1, 2)
    assert match_tlsa([wrong, right], chain).state is DaneState.MATCH
    assert match_tlsa([wrong], chain).state is DaneState.MISMATCH
    assert match_tlsa([], chain).state is DaneState.NO_RECORDS


def test_text_round_trip() -> None:
    record = TlsaRecord.from_text("3 1 1 AB CD ef")
    assert record == TlsaRecord(3, 1, 1, bytes.fromhex("abcdef"))
    assert record.to_text() == "3 1 1 abcdef"
    assert record.describe() == "DANE-EE SPKI SHA2-256"
    with pytest.raises(ValueError):
        TlsaRecord.from_text("3 1 zz")
    with pytest.raises(ValueError):
        TlsaRecord.from_text("3 1 1 xyz")
