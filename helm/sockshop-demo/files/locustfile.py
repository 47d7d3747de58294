"""Sock Shop load for Locust 2.x: browse the catalogue, log in, fill the cart, check out.

A port of the upstream load test (microservices-demo/load-test), which used the pre-1.0 API
(HttpLocust, TaskSet, min_wait/max_wait, Python 2's base64.encodestring). The requests are the
same front-end routes; the mix is weighted so that browsing dominates, as in a shop.

Environment: SOCKSHOP_USERNAME / SOCKSHOP_PASSWORD (the demo's seeded account by default) and
SOCKSHOP_WAIT_MIN / SOCKSHOP_WAIT_MAX (think time in seconds between tasks).
"""

from __future__ import annotations

import os
import random

from locust import HttpUser, between, task

USERNAME = os.environ.get("SOCKSHOP_USERNAME", "user")
PASSWORD = os.environ.get("SOCKSHOP_PASSWORD", "password")
WAIT_MIN = float(os.environ.get("SOCKSHOP_WAIT_MIN", "1"))
WAIT_MAX = float(os.environ.get("SOCKSHOP_WAIT_MAX", "3"))


class SockShopUser(HttpUser):
    wait_time = between(WAIT_MIN, WAIT_MAX)

    def on_start(self) -> None:
        # The front-end's /login takes HTTP basic credentials and sets the session cookie.
        self.client.get("/login", auth=(USERNAME, PASSWORD), name="/login")
        self.item_ids: list[str] = []

    def _catalogue(self) -> list[str]:
        with self.client.get("/catalogue", name="/catalogue", catch_response=True) as response:
            try:
                items = response.json()
                ids = [item["id"] for item in items]
            except (ValueError, TypeError, KeyError) as error:
                response.failure(f"unexpected catalogue: {error}")
                return []
            if not ids:
                response.failure("empty catalogue")
            return ids

    @task(5)
    def browse(self) -> None:
        self.client.get("/", name="/")
        self.item_ids = self._catalogue() or self.item_ids
        self.client.get("/category.html", name="/category.html")
        if self.item_ids:
            item = random.choice(self.item_ids)
            self.client.get(f"/detail.html?id={item}", name="/detail.html?id=[id]")

    @task(2)
    def add_to_cart(self) -> None:
        if not self.item_ids:
            self.item_ids = self._catalogue()
        if self.item_ids:
            item = random.choice(self.item_ids)
            self.client.post("/cart", json={"id": item, "quantity": 1}, name="/cart")

    @task(1)
    def checkout(self) -> None:
        if not self.item_ids:
            self.item_ids = self._catalogue()
        if not self.item_ids:
            return
        # Start from an empty cart so that every order has one known item.
        self.client.delete("/cart", name="/cart")
        self.client.post(
            "/cart", json={"id": random.choice(self.item_ids), "quantity": 1}, name="/cart"
        )
        self.client.get("/basket.html", name="/basket.html")
        self.client.post("/orders", name="/orders")
