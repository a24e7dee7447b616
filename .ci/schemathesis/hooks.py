"""Schemathesis hooks for Kontor's API document.

The document names two string formats of its own, for Russian tax numbers with check digits
(the rules are the Federal Tax Service's; Kontor checks them in crates/domain/src/taxid.rs).
Without a generator for them, schema-valid numbers would be drawn from the pattern alone and
nine in ten would carry a wrong check digit.
"""

import os

import schemathesis
from hypothesis import strategies as st


def _weighted(digits, weights):
    return sum(d * w for d, w in zip(digits, weights)) % 11 % 10


def _inn(body):
    digits = [int(c) for c in body]
    if len(digits) == 9:
        digits.append(_weighted(digits, [2, 4, 10, 3, 5, 9, 4, 6, 8]))
    else:
        digits.append(_weighted(digits, [7, 2, 4, 10, 3, 5, 9, 4, 6, 8]))
        digits.append(_weighted(digits, [3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8]))
    return "".join(map(str, digits))


def _ogrn(body):
    modulus = 13 if len(body) == 14 else 11
    return body + str(int(body) % modulus % 10)


_digits = lambda n: st.text(alphabet="0123456789", min_size=n, max_size=n)

schemathesis.openapi.format("ru-inn", st.one_of(_digits(9), _digits(10)).map(_inn))
schemathesis.openapi.format("ru-ogrn", st.one_of(_digits(12), _digits(14)).map(_ogrn))


# The run's own account is off limits: a generated request that would change, disable or
# delete the admin whose token the run uses would end the run's session, and every later
# request would only test the 401 path. Such requests go to an id no record has instead.
_PROTECTED = os.environ.get("KONTOR_ST_PROTECTED_USER", "").lower()
_ELSEWHERE = "00000000-0000-4000-8000-000000000000"


@schemathesis.hook
def before_call(context, case, kwargs):
    params = case.path_parameters or {}
    if _PROTECTED and "/users/" in case.path and str(params.get("id", "")).lower() == _PROTECTED:
        params["id"] = _ELSEWHERE
    # A list's cursor is opaque: only one the server gave out (for the same sort) continues a
    # list, so a generated one can only be refused. Lists are paged by Kontor's own tests.
    query = case.query or {}
    if "cursor" in query and case.method.upper() == "GET" and case.path.count("/") == 3:
        del query["cursor"]
