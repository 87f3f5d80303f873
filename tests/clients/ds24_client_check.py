#!/usr/bin/env python3
"""Runs the PyPI package `digistore24-client` against a running ds24-proxy.

The client is configured the way its users configure it for Digistore24,
with the proxy in place of `https://digistore24.com/api/call`:

    DigistoreClient(api_key=..., routes=DigistoreRoutes(base_url=PROXY + "/api/call"))

The key it sends (`X-DS-API-KEY`) is a dummy: the proxy drops a key the
client sends and injects the connection's own (the sandbox key under
`serve --sandbox`).

Expects a fresh `ds24-proxy serve --sandbox` (the seed of src/sandbox/data.rs:
products 10001-10005, purchases SBX00001-SBX00030, SBX00001 refundable).
Every check asserts values, prints PASS/FAIL with the error text, and the
script ends with `N passed, N failed`; the exit status is 1 on any failure.

Usage: ds24_client_check.py --proxy http://127.0.0.1:PORT
"""

import argparse
import dataclasses
import sys
import traceback

import requests
import requests.adapters

import digistore.client as dc
import digistore.model as dm

# The client sets no timeout on its requests.Session; a hung proxy must
# fail the check, not the CI job's clock.
TIMEOUT_SECS = 30

# Any string: the proxy must drop it and send the stored key instead.
DUMMY_KEY = "0000-not-a-real-key-the-proxy-drops-it"


class TimeoutAdapter(requests.adapters.HTTPAdapter):
    def send(self, request, **kwargs):
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = TIMEOUT_SECS
        return super().send(request, **kwargs)


def make_client(base_url):
    client = dc.DigistoreClient(
        api_key=DUMMY_KEY,
        routes=dc.DigistoreRoutes(base_url=base_url),
    )
    client.sess.mount("http://", TimeoutAdapter())
    return client


class Check:
    def __init__(self, proxy):
        self.proxy = proxy.rstrip("/")
        self.base_url = self.proxy + "/api/call"
        self.client = make_client(self.base_url)

    # -- helpers -----------------------------------------------------------

    def raw(self, function, **args):
        """The reply's JSON as the wire has it (for values and diagnostics)."""
        resp = self.client.sess.get(self.client.routes._url(function, args or None))
        try:
            return resp.status_code, resp.json()
        except ValueError:
            return resp.status_code, resp.text

    def call(self, function, **args):
        """A function the client has no method for, called the way its own
        CLI (digistore/cli.py) does: routes._url + the client's session,
        checked with the client's checked_response."""
        url = self.client.routes._url(function, args or None)
        return dc.checked_response(self.client.sess.get(url))

    def explain_parse_error(self, function, args, kind):
        """After a dacite error: every field the client's dataclass needs that
        the reply lacks (dacite names only the first)."""
        _, body = self.raw(function, **args)
        if not isinstance(body, dict):
            return f"reply is not JSON: {str(body)[:200]}"
        notes = []
        envelope_missing = required_fields(dm.Response) - body.keys()
        if envelope_missing:
            notes.append(
                "envelope lacks " + ", ".join(sorted(envelope_missing))
                + f" (has: {', '.join(sorted(body.keys()))})"
            )
        if "utc_offset" in body:
            try:
                int(body["utc_offset"])
            except (TypeError, ValueError):
                notes.append(
                    f"utc_offset is {body['utc_offset']!r}, which the client's"
                    " Response.utc_offset (int, cast with int()) cannot take"
                )
        if kind is not None and isinstance(body.get("data"), dict):
            data = body["data"]
            items = data.get("products") or ([data["product"]] if "product" in data else [])
            if items:
                lacking = required_fields(kind) - items[0].keys()
                if lacking:
                    notes.append(
                        f"{kind.__name__} lacks {len(lacking)} required fields: "
                        + ", ".join(sorted(lacking))
                    )
        return "; ".join(notes) or "no missing field found"

    # -- the checks ---------------------------------------------------------

    def check_list_products(self):
        try:
            products = self.client.list_products()
        except Exception as e:
            raise AssertionError(
                f"{type(e).__name__}: {e} [{self.explain_parse_error('listProducts', {}, dm.Product)}]"
            ) from e
        assert all(isinstance(p, dm.Product) for p in products), products
        by_id = {str(p.id): p for p in products}
        assert set(by_id) == {"10001", "10002", "10003", "10004", "10005"}, sorted(by_id)
        assert by_id["10001"].name == "Rust im Alltag (E-Book)", by_id["10001"].name
        assert by_id["10001"].currency == "EUR", by_id["10001"].currency
        assert by_id["10002"].language == "en", by_id["10002"].language
        assert by_id["10001"].is_active == dm.DigiBool.TRUE, by_id["10001"].is_active

    def check_get_product(self):
        # DigistoreClient.get_product() hands `data` itself to its Product
        # dataclass, but getProduct answers `data.product` (API-FACTS §8,
        # the spec, the sandbox), so that method cannot work against either.
        # Its route, its checked_response and its Product model are used as
        # they are; only the unwrapping of `product` is done here.
        try:
            res = dc.checked_response(self.client.sess.get(self.client.routes.get_product(10002)))
            product = to_product(res.data["product"])
        except Exception as e:
            raise AssertionError(
                f"{type(e).__name__}: {e} [{self.explain_parse_error('getProduct', {'product_id': 10002}, dm.Product)}]"
            ) from e
        assert isinstance(product, dm.Product), product
        assert str(product.id) == "10002", product.id
        assert product.name == "Async Rust Video Course", product.name
        assert product.currency == "USD", product.currency
        assert product.name_intern == "course_async_en", product.name_intern

    def check_get_purchase(self):
        try:
            res = dc.checked_response(
                self.client.sess.get(self.client.routes.get_purchase({"purchase_id": "SBX00004"}))
            )
        except Exception as e:
            raise AssertionError(
                f"{type(e).__name__}: {e} [{self.explain_parse_error('getPurchase', {'purchase_id': 'SBX00004'}, None)}]"
            ) from e
        assert res.successful, res
        data = res.data
        assert data["id"] == "SBX00004", data.get("id")
        assert str(data["product_id"]) == "10004", data.get("product_id")
        assert data["currency"] == "CHF", data.get("currency")
        assert float(data["amount"]) == 39.0, data.get("amount")
        assert data["payment_status"] == "paid", data.get("payment_status")

    def check_list_transactions_paged(self):
        try:
            page1 = self.client.list_transactions({"page_no": 1, "page_size": 5}, remaining_retries=0)
            page2 = self.client.list_transactions({"page_no": 2, "page_size": 5}, remaining_retries=0)
            whole = self.client.list_transactions({"page_no": 1, "page_size": 1000}, remaining_retries=0)
        except Exception as e:
            raise AssertionError(
                f"{type(e).__name__}: {e} [{self.explain_parse_error('listTransactions', {'page_no': 1, 'page_size': 5}, None)}]"
            ) from e
        ids = lambda page: [str(t["id"]) for t in page]
        assert len(page1) == 5, f"page 1 has {len(page1)} items"
        assert len(page2) == 5, f"page 2 has {len(page2)} items"
        assert not set(ids(page1)) & set(ids(page2)), (ids(page1), ids(page2))
        assert len(whole) >= 30, f"{len(whole)} transactions in all (seed: 30 purchases)"
        assert ids(page1) + ids(page2) == ids(whole)[:10], (ids(page1), ids(page2), ids(whole)[:10])

    def check_update_product_nested_data(self):
        # The client sends every ShortProduct field as data[...]=... on the
        # query string of a GET (that is how it works with Digistore24).
        product = dm.ShortProduct(
            name="Rust im Alltag (E-Book, 2. Auflage)",
            name_intern="ebook_rust_de_2",
            description="Second edition.",
            currency="EUR",
        )
        try:
            res = self.client.update_product(product, 10001)
        except Exception as e:
            raise AssertionError(
                f"{type(e).__name__}: {e} [{self.explain_parse_error('updateProduct', {'product_id': 10001, 'data[name]': product.name}, None)}]"
            ) from e
        assert res.successful, res
        assert res.data.get("modified") == "Y", res.data
        status, body = self.raw("getProduct", product_id=10001)
        assert status == 200, (status, body)
        stored = body["data"]["product"]
        assert stored["name"] == product.name, stored.get("name")
        assert stored["name_intern"] == "ebook_rust_de_2", stored.get("name_intern")
        assert stored["description"] == "Second edition.", stored.get("description")
        assert stored["buyer_type"] == "consumer", stored.get("buyer_type")

    def check_refund_purchase(self):
        try:
            res = self.call("refundPurchase", purchase_id="SBX00001")
        except Exception as e:
            raise AssertionError(
                f"{type(e).__name__}: {e} [{self.explain_parse_error('getPurchase', {'purchase_id': 'SBX00001'}, None)}]"
            ) from e
        assert res.successful, res
        data = res.data
        assert data["purchase_id"] == "SBX00001", data
        assert data["is_refunded"] == "Y", data
        assert float(data["refunded_amount"]) == 29.0, data.get("refunded_amount")
        assert data["currency"] == "EUR", data.get("currency")
        status, body = self.raw("getPurchase", purchase_id="SBX00001")
        assert status == 200 and body["data"]["payment_status"] == "refunded", (status, body)

    def check_second_refund_is_refused(self):
        self.expect_error(
            "refundPurchase", {"purchase_id": "SBX00001"},
            lambda code, message: "already" in message.lower() and "refund" in message.lower(),
        )

    def check_error_reply_unknown_purchase(self):
        self.expect_error(
            "getPurchase", {"purchase_id": "SBX99999"},
            lambda code, message: str(code) == "4" and "SBX99999" in message,
        )

    def check_base_url_with_trailing_slash(self):
        # Users paste "https://www.digistore24.com/api/call/": the client then
        # asks for /api/call//listProducts, which the proxy collapses.
        client = make_client(self.base_url + "/")
        res = dc.checked_response(client.sess.get(client.routes.list_products()))
        assert len(res.data["products"]) == 5, res.data

    def expect_error(self, function, args, message_ok):
        """The client must raise, and its error must carry Digistore24's
        envelope (`result: error`, code, message) for the caller to read."""
        url = self.client.routes._url(function, args)
        try:
            res = dc.checked_response(self.client.sess.get(url))
        except requests.HTTPError as e:
            body = e.response.json()
            assert body.get("result") == "error", body
            assert message_ok(body.get("code"), body.get("message", "")), body
            return
        except dc.DigistoreError as e:
            res = dc.to_response(e.args[0])
            assert res.result is dm.ResultStatus.ERROR, res
            assert message_ok(None, res.message or ""), res
            return
        except Exception as e:
            raise AssertionError(
                f"{type(e).__name__}: {e} [{self.explain_parse_error(function, args, None)}]"
            ) from e
        raise AssertionError(f"no error raised; reply: {res}")


def to_product(data):
    """A Product exactly as DigistoreClient.get_product() builds one."""
    def to_int(v):
        if isinstance(v, int):
            return v
        return int(v) if v else None

    def to_float(v):
        if isinstance(v, float):
            return v
        return float(v) if v else None

    return dc.dacite.from_dict(
        data_class=dm.Product,
        data=data,
        config=dc.dacite.Config(
            cast=(dc.enum.Enum, dm.DigiBool),
            type_hooks={int: to_int, float: to_float},
        ),
    )


def required_fields(cls):
    return {
        f.name for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proxy", required=True, help="the proxy, e.g. http://127.0.0.1:7424")
    args = parser.parse_args()

    check = Check(args.proxy)
    # Order matters: the reads see the seed, then the writes change it.
    names = [
        "list_products",
        "get_product",
        "get_purchase",
        "list_transactions_paged",
        "base_url_with_trailing_slash",
        "update_product_nested_data",
        "refund_purchase",
        "second_refund_is_refused",
        "error_reply_unknown_purchase",
    ]
    passed = failed = 0
    print(f"digistore24-client against {check.base_url} (key sent: a dummy)")
    for name in names:
        try:
            getattr(check, "check_" + name)()
        except Exception as e:
            failed += 1
            detail = str(e) or traceback.format_exc(limit=2).strip().splitlines()[-1]
            print(f"FAIL {name}: {type(e).__name__}: {detail}"[:2000])
        else:
            passed += 1
            print(f"PASS {name}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
