"""Settings from ACCOUNTDESK_* environment variables, with safe defaults for the embedded demo."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "accountdesk-demo-secret-change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ACCOUNTDESK_", extra="ignore")

    database_url: str = Field("sqlite:///var/accountdesk.db", description="SQLAlchemy URL: sqlite:///path or "
                                                                          "postgresql+psycopg://user@host/db")
    base_url: str = Field("http://127.0.0.1:8000", description="Public address used in links inside e-mails")
    secret_key: str = Field(DEV_SECRET, description="Key that signs cookies; set a long random value in production")
    cookie_secure: bool = Field(False, description="Mark session cookies Secure (set true behind HTTPS)")
    session_hours: int = Field(12, description="How long a console or storefront session lasts without activity")
    api_token_hours: int = Field(12, description="Lifetime of staff API bearer tokens")
    smtp_url: str | None = Field(None, description="smtp://user:pass@host:port (STARTTLS with ?starttls=1) or "
                                                   "smtps://…; unset writes .eml files")
    mail_from: str = Field("accountdesk <no-reply@accountdesk.local>", description="From address of every message")
    mail_dir: Path = Field(Path("var/mail"), description="Folder for .eml files when no SMTP server is set")
    redis_url: str | None = Field(None, description="redis://host:port/db for rate limits shared by every process; "
                                                    "unset keeps them in the database")
    max_concurrent_requests: int = Field(500, description="Requests one app process works on at once; more get 503 "
                                                          "(uvicorn limit_concurrency)")
    trusted_proxies: str = Field("", description="Comma list of proxy IPs or networks (CIDR) whose X-Forwarded-For "
                                                 "and X-Forwarded-Proto are believed; empty believes none")
    rate_limits_enabled: bool = Field(True, description="Turn sign-in/registration/reset rate limits off "
                                                        "(load tests only)")
    argon2_memory_kib: int = Field(19456, description="argon2id memory cost (KiB)")
    argon2_time_cost: int = Field(2, description="argon2id iterations")
    argon2_parallelism: int = Field(1, description="argon2id lanes")
    hashing_threads: int = Field(0, ge=0, description="argon2 computations one process runs at once; 0: the CPUs it "
                                                      "may use, divided among the app processes of `serve`")
    outbox_poll_seconds: float = Field(1.0, description="How often an idle worker looks for new outbox rows")
    outbox_max_attempts: int = Field(8, description="Delivery attempts before a message is marked failed")
    reset_token_minutes: int = Field(30, description="Lifetime of a password-reset link")
    activation_token_hours: int = Field(24, description="Lifetime of an activation link")
    staff_totp_required_for_admins: bool = Field(
        False, description="Admins must sign in with a second factor (TOTP); one without it is sent to set it up and "
                           "can do nothing else")
    import_dir: Path = Field(Path("var/imports"), description="Folder where a customer file uploaded in the console "
                                                              "is kept between its preview and its import")
    import_welcome_per_minute: int = Field(60, ge=1, description="Welcome e-mails an import lets out per minute; "
                                                                  "the rest wait their turn in the outbox")
    idempotency_key_hours: int = Field(24, description="How long an Idempotency-Key (and a page form's key) and the "
                                                       "answer it got are kept")
    erp_adapter: Literal["file", "sap"] = Field("file", description="ERP adapter: file (a folder of CSV files) or sap "
                                                                    "(SAP Business One Service Layer)")
    erp_file_dir: Path = Field(Path("var/erp"), description="Folder of the file ERP: customers.csv, contacts.csv, "
                                                            "invoices.csv, statements.csv")
    erp_sap_url: str | None = Field(None, description="SAP Business One Service Layer address, e.g. "
                                                      "https://sap.example.com:50000 (the adapter adds /b1s/v1/)")
    erp_sap_company_db: str = Field("", description="SAP company database (CompanyDB of the Login call)")
    erp_sap_username: str = Field("", description="SAP Business One user the adapter signs in as")
    erp_sap_password: SecretStr | None = Field(None, description="Password of that SAP user")
    erp_sap_verify_tls: bool = Field(True, description="Check the Service Layer's TLS certificate (false only for a "
                                                       "self-signed test server)")
    erp_sap_ca_bundle: Path | None = Field(None, description="PEM file of the CA (or self-signed certificate) that "
                                                             "signed the Service Layer's certificate")
    erp_sap_page_size: int = Field(100, description="Rows per Service Layer page (Prefer: odata.maxpagesize)")
    erp_sap_series: int | None = Field(None, description="SAP numbering series for new business partners; unset uses "
                                                         "the default series")
    erp_timeout_seconds: float = Field(2.0, description="Time limit of every ERP request (seconds)")
    erp_cache_seconds: float = Field(60.0, description="How long ERP read answers are kept (seconds); 0 turns the "
                                                       "cache off")
    oidc_access_token_seconds: int = Field(600, description="Lifetime of OpenID Connect access tokens (sign-in and "
                                                            "backend credentials)")
    oidc_id_token_seconds: int = Field(600, description="Lifetime of OpenID Connect ID tokens and logout tokens")
    oidc_refresh_token_days: int = Field(30, description="Lifetime of a refresh token (each refresh issues a new one)")
    oidc_logout_timeout_seconds: float = Field(3.0, description="Time limit of a back-channel logout request to a "
                                                                "client (seconds)")

    dns_nameserver: str | None = Field(None, description="host:port of the DNS server that e-mail domain checks ask "
                                                         "(TXT records); unset uses the system's resolver")
    dns_timeout_seconds: float = Field(3.0, description="Time limit of a domain's DNS check (seconds)")

    webhook_timeout_seconds: float = Field(5.0, description="Time limit of one webhook delivery, connecting and "
                                                            "answering together (seconds)")
    webhook_retry_seconds: str = Field("5,300,1800,7200,18000,36000", description="Waits before each retry of a "
                                       "failed webhook delivery (seconds, comma list; the last repeats)")
    webhook_disable_after_hours: float = Field(120.0, description="An endpoint failing without a success for this "
                                               "long is disabled and its owner e-mailed")
    webhook_secret_overlap_hours: float = Field(24.0, description="After a secret rotation, how long deliveries are "
                                                "also signed with the old secret")
    webhook_allow_private_targets: bool = Field(False, description="Let webhooks and back-channel logout notices reach "
                                                "private, loopback, link-local "
                                                "and other non-public addresses (tests, closed networks)")
    webhook_allowed_networks: str = Field("", description="Comma list of networks (CIDR) webhooks and back-channel "
                                          "logout notices may reach even "
                                          "though they are not public, e.g. 10.1.2.0/24")

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, value: str) -> str:
        for item in filter(None, (part.strip() for part in value.split(","))):
            ipaddress.ip_network(item, strict=False)  # a ValueError names the entry that is not an address
        return value

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        cls._proxies_are_addresses(value)
        return value

    @field_validator("webhook_retry_seconds")
    @classmethod
    def _retry_waits(cls, value: str) -> str:
        if not value.strip() or any(float(part) < 0 for part in value.split(",")):
            raise ValueError("a comma list of waits in seconds, each 0 or more")
        return value

    @property
    def trusted_proxy_list(self) -> list[str]:
        return [part.strip() for part in self.trusted_proxies.split(",") if part.strip()]


@lru_cache
def get_settings() -> Settings:
    return Settings()
