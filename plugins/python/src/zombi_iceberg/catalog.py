"""Zombi's Iceberg REST catalog for PyIceberg, with real-time tables and a node-down fallback."""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import unquote

import requests
from pyiceberg.catalog import URI, WAREHOUSE_LOCATION, Catalog
from pyiceberg.catalog.rest import (
    DEFAULT_ENDPOINTS,
    DEFAULT_NAMESPACE_SEPARATOR,
    NAMESPACE_SEPARATOR_PROPERTY,
    RestCatalog,
    TableResponse,
)
from pyiceberg.exceptions import ServerError, ServiceUnavailableError
from pyiceberg.table import StaticTable, Table
from pyiceberg.typedef import Identifier
from pyiceberg.utils.config import Config, merge_config

from zombi_iceberg._http import mount_timeout, planning_timeout_s
from zombi_iceberg._log import warn_limited
from zombi_iceberg.errors import NodeUnavailable
from zombi_iceberg.hot import HotClient
from zombi_iceberg.table import ZombiTable

TOKEN = "token"
HOT_TOKEN = "hot-token"
HOT_URI = "zombi.hot-uri"
NAMESPACE = "zombi.namespace"
DEFAULT_NAMESPACE = "zombi"
SERVER_WAREHOUSE = "zombi.warehouse"
LISTING_TTL_MS = "zombi.hot-listing-ttl-ms"
HOT_READ_RETRIES = "zombi.hot-read-retries"
HOT_READ_CONCURRENCY = "zombi.hot-read-concurrency"
HOT_REQUIRED = "zombi.hot-required"

# What "the node does not answer" looks like to a client: refused or reset connections,
# timeouts, and a node that answers but cannot serve (5xx while starting or stopping).
_UNREACHABLE = (requests.ConnectionError, requests.Timeout, ServerError, ServiceUnavailableError)


class ZombiCatalog(RestCatalog):
    """PyIceberg's RestCatalog pointed at a Zombi node.

    - every call to the node is bounded by `zombi.planning-timeout-ms` (default 5000);
    - constructing it never fails because the node is down: `/v1/config` is fetched again
      on the next `load_table`;
    - `load_table` returns a ZombiTable whose scans add the node's hot rows; when the node
      does not answer, the table is read from the warehouse pointer
      (`<warehouse>/<namespace>/<table>/metadata/version-hint.text`) and scans return the
      committed rows only;
    - a bare table name is looked up in the `zombi` namespace (`zombi.namespace`).

    Usable through PyIceberg's own loader too: `py-catalog-impl=zombi_iceberg.ZombiCatalog`.
    """

    def __init__(self, name: str, **properties: Any) -> None:
        self._config_loaded = False
        self._config_error: BaseException | None = None
        self._hot_client: HotClient | None = None
        self._hot_lock = threading.Lock()
        super().__init__(name, **properties)

    # -- the node's REST catalog, bounded and lazy ------------------------------------------

    def _create_session(self) -> requests.Session:
        session = super()._create_session()
        return mount_timeout(session, planning_timeout_s(self.properties))

    def _fetch_config(self) -> None:
        try:
            super()._fetch_config()
        except _UNREACHABLE as exc:
            self._config_error = exc
            warn_limited(("config", self.uri), "catalog config unavailable, asking again on the next table load: %s", exc)
            # What RestCatalog would have set from a config answer, with its own defaults.
            self._supported_endpoints = set(DEFAULT_ENDPOINTS)
            sep = self.properties.get(NAMESPACE_SEPARATOR_PROPERTY, DEFAULT_NAMESPACE_SEPARATOR)
            self._namespace_separator = unquote(sep)
            return
        self._config_loaded = True
        self._config_error = None

    def _ensure_config(self) -> bool:
        if not self._config_loaded:
            self._fetch_config()
            if self._config_loaded:
                # Headers and auth come from the config answer.
                stale, self._session = self._session, self._create_session()
                stale.close()
        return self._config_loaded

    # -- tables -----------------------------------------------------------------------------

    def qualified(self, identifier: str | Identifier) -> Identifier:
        ident = Catalog.identifier_to_tuple(identifier)
        if len(ident) == 1:
            ident = (self.properties.get(NAMESPACE, DEFAULT_NAMESPACE), *ident)
        return ident

    def load_table(self, identifier: str | Identifier) -> Table:
        ident = self.qualified(identifier)
        if not self._ensure_config():
            return self._load_from_warehouse(ident, self._config_error or NodeUnavailable(f"{self.uri} does not answer"))
        try:
            return super().load_table(ident)
        except _UNREACHABLE as exc:
            return self._load_from_warehouse(ident, exc)

    def table_exists(self, identifier: str | Identifier) -> bool:
        return super().table_exists(self.qualified(identifier))

    def _response_to_table(self, identifier_tuple: tuple[str, ...], table_response: TableResponse) -> Table:
        table = super()._response_to_table(identifier_tuple, table_response)
        return ZombiTable(
            identifier=table.name(),
            metadata=table.metadata,
            metadata_location=table.metadata_location,
            io=table.io,
            catalog=self,
            config=table.config,
        )

    def warehouse(self) -> str | None:
        """The warehouse root: the node's `zombi.warehouse` once its config was read, else the
        `warehouse` property."""
        return self.properties.get(SERVER_WAREHOUSE) or self.properties.get(WAREHOUSE_LOCATION)

    def _load_from_warehouse(self, ident: Identifier, cause: BaseException) -> ZombiTable:
        warehouse = self.warehouse()
        if not warehouse:
            raise NodeUnavailable(
                f"cannot load {'.'.join(ident)}: the node does not answer and no warehouse is known "
                f"(set the 'warehouse' property): {cause}"
            ) from cause
        location = "/".join([warehouse.rstrip("/"), *ident])
        try:
            static = StaticTable.from_metadata(location, properties=self._file_io_properties())
        except Exception as exc:
            raise NodeUnavailable(
                f"cannot load {'.'.join(ident)}: the node does not answer ({cause}) and the "
                f"warehouse pointer at {location} cannot be read: {exc}"
            ) from exc
        warn_limited(
            ("warehouse", ident),
            "the node does not answer, reading %s from the warehouse pointer, committed rows only: %s",
            ".".join(ident),
            cause,
        )
        return ZombiTable(
            identifier=ident,
            metadata=static.metadata,
            metadata_location=static.metadata_location,
            io=static.io,
            catalog=self,
            from_warehouse=True,
        )

    def _file_io_properties(self) -> dict[str, Any]:
        return {k: v for k, v in self.properties.items() if isinstance(v, str)}

    # -- hot reads --------------------------------------------------------------------------

    def hot_client(self) -> HotClient:
        with self._hot_lock:
            if self._hot_client is None:
                props = self.properties
                token = props.get(HOT_TOKEN) or props.get(TOKEN)
                self._hot_client = HotClient(
                    base_uri=props.get(HOT_URI) or self.uri,
                    token=token,
                    timeout_s=planning_timeout_s(props),
                    listing_ttl_s=float(props.get(LISTING_TTL_MS, 2000)) / 1000.0,
                    read_retries=int(props.get(HOT_READ_RETRIES, 20)),
                    read_concurrency=int(props.get(HOT_READ_CONCURRENCY, 2)),
                )
            return self._hot_client

    def hot_required(self) -> bool:
        return str(self.properties.get(HOT_REQUIRED, "false")).lower() in ("true", "1", "yes", "on")

    def close(self) -> None:
        with self._hot_lock:
            if self._hot_client is not None:
                self._hot_client.close()
                self._hot_client = None
        super().close()

def load_catalog(
    name: str = "zombi",
    uri: str | None = None,
    token: str | None = None,
    hot_token: str | None = None,
    **properties: Any,
) -> ZombiCatalog:
    """A ZombiCatalog for the node at `uri` (the node's HTTP address, e.g.
    `http://127.0.0.1:8090`).

    Properties (all optional, strings or numbers):
      token                      catalog token (`Authorization: Bearer …`)
      hot-token                  token for the hot endpoints (default: token)
      warehouse                  warehouse root used when the node was never reached
      zombi.planning-timeout-ms  timeout of every call to the node (default 5000)
      zombi.namespace            namespace of bare table names (default zombi)
      zombi.hot-listing-ttl-ms   reuse of a hot listing per (table, snapshot) (default 2000)
      zombi.hot-read-retries     retries of a segment read answered 429 (default 20, backoff up to 1 s)
      zombi.hot-replan-retries   table reloads after 410 Gone (default 3)
      zombi.hot-required         raise instead of reading committed rows only (default false)

    Properties from PyIceberg's configuration (`~/.pyiceberg.yaml`, `PYICEBERG_CATALOG__…`)
    for `name` are merged first, as PyIceberg's own `load_catalog` does.
    """
    conf = Config().get_catalog_config(name) or {}
    props: dict[str, Any] = merge_config(dict(conf), dict(properties))  # type: ignore[arg-type]
    if uri is not None:
        props[URI] = uri
    if token is not None:
        props[TOKEN] = token
    if hot_token is not None:
        props[HOT_TOKEN] = hot_token
    props.pop("type", None)
    props.pop("py-catalog-impl", None)
    if not props.get(URI):
        raise ValueError("load_catalog needs the node's uri, e.g. uri='http://127.0.0.1:8090'")
    props = {k: str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v for k, v in props.items()}
    return ZombiCatalog(name, **props)
