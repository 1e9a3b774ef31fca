"""Unit tests for hello-service: python3 -m unittest (from this directory)."""

import json
import os
import threading
import unittest
import urllib.error
import urllib.request
from unittest import mock

import app


class HelloServiceTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.server = app.make_server(0, log_requests=False)  # any free port
        cls.thread = threading.Thread(target=cls.server.serve_forever, daemon=True)
        cls.thread.start()
        cls.base = f"http://127.0.0.1:{cls.server.server_port}"

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.shutdown()
        cls.server.server_close()
        cls.thread.join(timeout=5)

    def get(self, path: str):
        with urllib.request.urlopen(self.base + path, timeout=5) as response:
            return response.status, response.headers.get("Content-Type"), response.read()

    def test_health_reports_ok_and_the_baked_in_commit(self) -> None:
        with mock.patch.dict(os.environ, {"APP_VERSION": "3f2a9c1d0b7e"}):
            status, content_type, body = self.get("/health")
        self.assertEqual(status, 200)
        self.assertEqual(content_type, "application/json")
        self.assertEqual(json.loads(body), {"status": "ok", "version": "3f2a9c1d0b7e"})

    def test_health_without_a_version_says_unknown(self) -> None:
        with mock.patch.dict(os.environ, {}, clear=False):
            os.environ.pop("APP_VERSION", None)
            _, _, body = self.get("/health")
        self.assertEqual(json.loads(body)["version"], "unknown")

    def test_health_ignores_query_strings(self) -> None:
        status, _, _ = self.get("/health?probe=alb")
        self.assertEqual(status, 200)

    def test_root_names_the_environment(self) -> None:
        with mock.patch.dict(os.environ, {"DEPLOY_ENVIRONMENT": "test"}):
            status, _, body = self.get("/")
        self.assertEqual(status, 200)
        self.assertEqual(body, b"hello from test\n")

    def test_unknown_path_is_404(self) -> None:
        with self.assertRaises(urllib.error.HTTPError) as raised:
            self.get("/nope")
        self.assertEqual(raised.exception.code, 404)


if __name__ == "__main__":
    unittest.main()
