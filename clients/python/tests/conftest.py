"""The client's tests run against the portal's live test server, with the portal's named cast."""

from tests.conftest import *  # noqa: F403 (the cast and the federation fixtures)
from tests.conftest import _audit_flushable, _media_root  # noqa: F401 (autouse; `*` skips private names)
from tests.integration.conftest import portal  # noqa: F401
