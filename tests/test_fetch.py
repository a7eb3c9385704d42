"""Image URLs behind the SSRF guard (rmbg.image.fetch), against real local
HTTP servers. Only loopback servers exist here: a permitted fetch names its
host in the explicit allow-list; private, link-local and other addresses are
reached through a stand-in name resolver (no connection is ever made to them)."""

from __future__ import annotations

import io
import socket

import numpy as np
import pytest
from PIL import Image

import rmbg
from rmbg.errors import InvalidImageError
from rmbg.image import fetch
from rmbg.image.fetch import URLRefused, fetch_image
from tests.support.fetch import PNG, serving


@pytest.fixture
def server():
    with serving() as srv:
        yield srv


LOCAL = {"127.0.0.1"}


def test_a_permitted_host_is_fetched(server):
    assert fetch_image(server.url("/img.png"), allow_hosts=LOCAL) == PNG
    assert fetch_image(server.url("/text-png"), allow_hosts=LOCAL) == PNG  # content decides, not the header


def test_loopback_is_refused_by_default_without_a_request(server, monkeypatch):
    monkeypatch.delenv("RMBG_URL_ALLOW_HOSTS", raising=False)
    with pytest.raises(URLRefused, match=r"Refused to fetch from 127\.0\.0\.1: 127\.0\.0\.1 is a loopback address\."):
        fetch_image(server.url("/img.png"))
    with pytest.raises(URLRefused, match="localhost: 127.0.0.1 is a loopback address"):
        fetch_image(server.url("/img.png", host="localhost"))
    assert server.requests == []


@pytest.mark.parametrize(
    "addresses, words",
    [
        (["10.0.0.5"], "10.0.0.5 is a private address"),
        (["192.168.1.20"], "192.168.1.20 is a private address"),
        (["169.254.169.254"], "169.254.169.254 is a link-local address"),
        (["224.0.0.1"], "224.0.0.1 is a multicast address"),
        (["0.0.0.0"], "0.0.0.0 is a"),
        (["::1"], "::1 is a loopback address"),
        (["fe80::1"], "fe80::1 is a link-local address"),
        (["::ffff:10.1.2.3"], "10.1.2.3 is a private address"),
        (["2002:a00:5::1"], "10.0.0.5 is a private address"),  # 6to4: was taken as a public IPv6 address
        (["93.184.216.34", "10.0.0.7"], "10.0.0.7 is a private address"),  # any address decides
    ],
)
def test_names_that_resolve_to_inner_addresses_are_refused(monkeypatch, addresses, words):
    def resolver(host, port, *args, **kwargs):
        assert host == "images.example"
        family = lambda a: socket.AF_INET6 if ":" in a else socket.AF_INET  # noqa: E731
        return [(family(a), socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    monkeypatch.setattr(fetch.socket, "getaddrinfo", resolver)
    with pytest.raises(URLRefused, match=words):
        fetch_image("https://images.example/photo.jpg")


@pytest.mark.parametrize(
    "url, words",
    [
        ("ftp://example.com/a.png", "Only http and https URLs are fetched"),
        ("file:///etc/passwd", "Only http and https URLs are fetched"),
        ("http://user:secret@example.com/a.png", "URLs with a user name or password are not fetched."),
        ("http:///a.png", "The URL has no host"),
    ],
)
def test_schemes_and_credentials(url, words):
    with pytest.raises(URLRefused, match=words) as caught:
        fetch_image(url)
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(
    "url, said",
    [
        (
            "http://127.0.0.1:99999/a.png?sig=1",
            "The URL's port 99999 is out of range (1-65535): http://127.0.0.1:99999/a.png",
        ),
        ("HTTP://[::1]:65536/", "The URL's port 65536 is out of range (1-65535): http://[::1]:65536/"),
        ("http://example.com:0/a.png", "The URL's port 0 is out of range (1-65535): http://example.com:0/a.png"),
        ("http://example.com:8o/", "The URL's port is not a number: http://example.com:8o/"),
        ("http://example.com:80:80/", "The URL's port is not a number: http://example.com:80:80/"),
        ("http://example.com:\u0668\u0660/", "The URL's port is not a number: http://example.com:\u0668\u0660/"),
        ("example.com/a.png?sig=1", "The URL must start with http:// or https://: example.com/a.png"),
        ("//example.com/a.png", "The URL must start with http:// or https://: //example.com/a.png"),
        ("  ", "The URL must start with http:// or https://: nothing was given"),
        ("gopher://example.com/a", "Only http and https URLs are fetched, not gopher: gopher://example.com/a"),
        ("mailto:someone@example.com", "Only http and https URLs are fetched, not mailto: mailto:...@example.com"),
        ("http://", "The URL has no host: http://"),
        ("http://:80/a.png", "The URL has no host: http://:80/a.png"),
        ("http:a.png", "The URL has no host: http:a.png"),
        ("http:user:secret@a.png", "The URL has no host: http:...@a.png"),
        ("http://@example.com/", "URLs with a user name or password are not fetched."),
        ("http://[::1/a.png", "The URL cannot be read: http://[::1/a.png"),
    ],
)
def test_every_malformed_part_of_a_url_has_its_own_sentence(url, said):
    """A port past 65535 is out of range, not "not a number" (it was, and its message left the port out)."""
    with pytest.raises(URLRefused) as refused:
        fetch.check_url(url)
    assert str(refused.value) == said


def test_the_connection_goes_to_the_checked_address_with_the_name_as_host(server, monkeypatch):
    # a name resolving to the local server: with the name allowed, the request
    # reaches the address resolved once, and says the name in Host
    real = socket.getaddrinfo
    calls = []

    def resolver(host, port, *args, **kwargs):
        calls.append(host)
        return real("127.0.0.1" if host == "pictures.test" else host, port, *args, **kwargs)

    monkeypatch.setattr(fetch.socket, "getaddrinfo", resolver)
    assert fetch_image(server.url("/img.png", host="pictures.test"), allow_hosts={"pictures.test"}) == PNG
    assert calls.count("pictures.test") == 1
    assert server.requests == [("/img.png", f"pictures.test:{server.port}")]


def test_redirects_are_checked_and_bounded(server):
    assert fetch_image(server.url("/redirect/4"), allow_hosts=LOCAL) == PNG  # 5 redirects: fine
    with pytest.raises(InvalidImageError, match="redirected more than 5 times"):
        fetch_image(server.url("/redirect/5"), allow_hosts=LOCAL)  # 6
    inner = server.url("/img.png")  # 127.0.0.1, not allowed when only "localhost" is
    with pytest.raises(URLRefused, match="Refused to fetch from 127.0.0.1: 127.0.0.1 is a loopback address"):
        fetch_image(server.url(f"/to?u={inner}", host="localhost"), allow_hosts={"localhost"})
    assert [path for path, _ in server.requests][-1] == f"/to?u={inner}"  # the inner URL was never requested


def test_size_is_capped_while_streaming(server):
    with pytest.raises(InvalidImageError, match=r"is over the 1 MB limit \(stopped reading\)"):
        fetch_image(server.url("/big"), allow_hosts=LOCAL, max_bytes=2**20)
    with pytest.raises(InvalidImageError, match="is 3 MB, over the 1 MB limit"):
        fetch_image(server.url("/declared-big"), allow_hosts=LOCAL, max_bytes=2**20)


def test_a_server_that_stalls_hits_the_read_timeout(server):
    with pytest.raises(InvalidImageError, match="did not answer in time"):
        fetch_image(server.url("/slow"), allow_hosts=LOCAL, read_timeout=0.3)


def test_not_an_image_and_http_errors(server):
    with pytest.raises(InvalidImageError, match=r"/html is not an image we can read \(it said image/png\)"):
        fetch_image(server.url("/html"), allow_hosts=LOCAL)
    with pytest.raises(InvalidImageError, match="/missing answered HTTP 404"):
        fetch_image(server.url("/missing?token=abc"), allow_hosts=LOCAL)


def test_messages_leave_out_the_query(server):
    with pytest.raises(InvalidImageError) as caught:
        fetch_image(server.url("/missing?sig=TOPSECRET"), allow_hosts=LOCAL)
    assert "TOPSECRET" not in str(caught.value)


def test_remove_background_and_the_cli_take_a_url(server, monkeypatch, tmp_path):
    from rmbg.cli.main import main
    from tests.support.providers import CountingProvider

    monkeypatch.setenv("RMBG_URL_ALLOW_HOSTS", "127.0.0.1")
    provider = CountingProvider()
    from_url = rmbg.remove_background(server.url("/img.png"), provider, cache=None)
    from_bytes = rmbg.remove_background(PNG, provider, cache=None)
    assert np.array_equal(np.asarray(from_url.image), np.asarray(from_bytes.image))

    rmbg.register("counting-url", lambda **_: CountingProvider("counting-url"))
    try:
        code = main(
            [
                "remove",
                server.url("/img.png"),
                server.url("/missing"),
                "-o",
                str(tmp_path / "out"),
                "-p",
                "counting-url",
                "--yes",
            ]
        )
    finally:
        from rmbg import registry

        registry.unregister("counting-url")
    assert code == 1  # one failed
    with Image.open(tmp_path / "out" / "img.png") as out:
        assert out.size == (40, 30)
    rows = (tmp_path / "out" / "manifest.csv").read_text()
    assert "answered HTTP 404" in rows


def test_cli_background_from_a_url(server, monkeypatch, tmp_path, capsys):
    from rmbg.cli.main import main
    from tests.support.providers import CountingProvider

    rmbg.register("counting-bg", lambda **_: CountingProvider("counting-bg"))
    (tmp_path / "in").mkdir()
    Image.new("RGB", (40, 30), (0, 0, 0)).save(tmp_path / "in" / "dark.png")  # red 0: alpha 0, all background
    try:
        assert (
            main(
                [
                    "remove",
                    str(tmp_path / "in"),
                    "-o",
                    str(tmp_path / "x"),
                    "-p",
                    "counting-bg",
                    "--yes",
                    "--bg",
                    server.url("/img.png"),
                ]
            )
            == 2
        )  # loopback, not allowed
        assert "--bg http://127.0.0.1:" in capsys.readouterr().err
        monkeypatch.setenv("RMBG_URL_ALLOW_HOSTS", "127.0.0.1")
        assert (
            main(
                [
                    "remove",
                    str(tmp_path / "in"),
                    "-o",
                    str(tmp_path / "out"),
                    "-p",
                    "counting-bg",
                    "--yes",
                    "--bg",
                    server.url("/img.png"),
                ]
            )
            == 0
        )
    finally:
        from rmbg import registry

        registry.unregister("counting-bg")
    with Image.open(tmp_path / "out" / "dark.png") as out:
        assert out.mode == "RGB" and np.array_equal(np.asarray(out), np.asarray(Image.open(io.BytesIO(PNG))))


@pytest.mark.parametrize(
    "url, words",
    [
        ("http://0.0.0.0:8080/", "0.0.0.0: 0.0.0.0 is an unspecified address"),  # was "a unspecified"
        ("http://[::]/", "[::]: :: is an unspecified address"),
        ("http://[::ffff:0.0.0.0]/", "[::ffff:0.0.0.0]: 0.0.0.0 is an unspecified address"),
        ("http://[2002:7f00:1::]/", "[2002:7f00:1::]: 127.0.0.1 is a loopback address"),  # 6to4 of 127.0.0.1
        ("http://[2002:a9fe:a9fe::]/", "[2002:a9fe:a9fe::]: 169.254.169.254 is a link-local address"),
        ("http://127.0.0.1/", "127.0.0.1: 127.0.0.1 is a loopback address"),
        ("http://169.254.1.1/", "169.254.1.1: 169.254.1.1 is a link-local address"),
        ("http://224.0.0.1/", "224.0.0.1: 224.0.0.1 is a multicast address"),
        ("http://240.0.0.1/", "240.0.0.1: 240.0.0.1 is a reserved address"),
        ("http://10.0.0.1/", "10.0.0.1: 10.0.0.1 is a private address"),
        ("http://100.64.0.1/", "100.64.0.1: 100.64.0.1 is a shared (carrier-grade NAT) address"),
    ],
)
def test_every_kind_of_address_refused_is_named_with_its_article(monkeypatch, url, words):
    """Each kind of address the guard names, a sentence of its own (every entry of the table: test_fetch_addresses)."""
    monkeypatch.delenv("RMBG_URL_ALLOW_HOSTS", raising=False)
    with pytest.raises(URLRefused) as refused:
        fetch.check_url(url)
    assert str(refused.value) == f"Refused to fetch from {words}."
