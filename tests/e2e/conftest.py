import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "clients", "python"))

from server import KEYS, Server  # noqa: E402
from diffrank_client import Client  # noqa: E402


@pytest.fixture(scope="session")
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture(scope="session")
def admin(server):
    return Client(server.target, api_key=KEYS["admin"])


@pytest.fixture(scope="session")
def reader(server):
    return Client(server.target, api_key=KEYS["read"])


@pytest.fixture(scope="session")
def writer(server):
    return Client(server.target, api_key=KEYS["write"])


@pytest.fixture(scope="session")
def corpus(admin):
    """A small collection 'corpus' with known documents."""
    admin.create_collection("corpus")
    docs = [
        {"id": "py", "title": "Python", "text": "Python is a programming language with garbage collection.",
         "metadata": '{"lang": "en", "year": 1991}'},
        {"id": "rust", "title": "Rust", "text": "Rust is a systems programming language without a garbage collector.",
         "metadata": '{"lang": "en", "year": 2015}'},
        {"id": "bread", "title": "Bread", "text": "Bread is baked from flour, water and yeast in an oven.",
         "metadata": '{"lang": "en", "year": 0}'},
        {"id": "brot", "title": "Brot", "text": "Brot wird aus Mehl, Wasser und Hefe im Ofen gebacken.",
         "metadata": '{"lang": "de", "year": 0}'},
        {"id": "tea", "title": "Tea", "text": "Tea is brewed by pouring hot water over dried leaves.",
         "metadata": '{"lang": "en", "year": 0}'},
    ]
    r = admin.upsert("corpus", docs, batch_size=2)
    assert r.upserted == 5 and r.batches == 3
    return docs
