"""Owners over the management API, and the two pages Stripe's hosted onboarding sends the
owner back to.

- `POST /api/owners` creates the owner and its Stripe Express account;
- `POST /api/owners/{id}/onboarding-link` gives a new link to Stripe's hosted onboarding;
- `GET /api/owners`, `GET /api/owners/{id}` (with the payouts), and
  `POST /api/owners/{id}/refresh` (the flags read again from Stripe).
Errors name the field; nothing is created when a request is refused.

The pages (`/owners/onboarding/done`, `/owners/onboarding/expired`) are plain and public:
the owner lands there from Stripe, not the operator. They say what happened and what to do
next, in the driver pages' style and languages; they change nothing.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import AwareDatetime, Field

from httpapi.errors import ApiError, not_found
from httpapi.middleware import actor_of
from httpapi.models import ApiModel
from httpapi.routing import Api
from payments.http import valid_email
from payments.onboarding import DONE_PATH, EXPIRED_PATH, Onboarding, OwnerRefused, OwnerUnavailable
from payments.owners import Owner, Payout
from payments.web import language
from payments.web.texts import Texts

OwnerId = Field(
    pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
    description="Goes into URLs: 1 to 64 of A-Z a-z 0-9 . _ -",
)


class NewOwner(ApiModel):
    id: str = OwnerId
    name: str = Field(min_length=1, max_length=200, description="As the owner is known")
    email: str = Field(min_length=3, max_length=254, description="Stripe writes to it")
    country: str = Field(
        pattern=r"^[A-Za-z]{2}$", description="ISO 3166-1 alpha-2 code of the owner, e.g. DE"
    )


class PayoutOut(ApiModel):
    id: str
    amount: int = Field(description="Minor units")
    currency: str
    status: str = Field(description="Stripe's: pending, in_transit, paid, failed, canceled")
    arrival_date: str | None
    failure_message: str | None
    created_at: str
    updated_at: str


class OwnerOut(ApiModel):
    id: str
    name: str
    email: str
    country: str
    stripe_account_id: str | None
    ready: bool = Field(description="May receive transfers (Stripe's flags say so)")
    charges_enabled: bool
    payouts_enabled: bool
    details_submitted: bool
    transfers_active: bool = Field(description="The transfers capability is active")
    requirements_due: list[str] = Field(description="Stripe's requirements currently due")
    ready_at: AwareDatetime | None = Field(description="When the owner first became ready")
    created_at: str
    updated_at: str


class OwnerDetails(OwnerOut):
    payouts: list[PayoutOut] = Field(description="The account's payouts, newest first")


class OnboardingLinkOut(ApiModel):
    url: str = Field(description="Stripe's hosted onboarding; single use, send it at once")
    expires_at: AwareDatetime


def owner_out(owner: Owner) -> OwnerOut:
    return OwnerOut.model_validate(owner, from_attributes=True)


def owner_details(owner: Owner, payouts: list[Payout]) -> OwnerDetails:
    return OwnerDetails.model_validate(
        {
            **owner_out(owner).model_dump(),
            "payouts": [PayoutOut.model_validate(p, from_attributes=True) for p in payouts],
        }
    )


def _api_error(refused: OwnerRefused) -> ApiError:
    return ApiError(refused.status, refused.code, refused.message, refused.field)


def _unavailable(error: OwnerUnavailable) -> ApiError:
    return ApiError(503, "stripe_unavailable", f"{error}; nothing is lost, ask again")


class OwnerRoutes:
    def __init__(self, onboarding: Onboarding) -> None:
        self._onboarding = onboarding

    def register(self, api: Api) -> None:
        tag = "owners"
        api.add("POST", "/api/owners", self.create_owner, tag=tag, body=NewOwner,
                summary="Add an owner and its Stripe Connect account (Express); the same "
                "request again is answered the same", response=OwnerOut, status=201,
                errors=(409, 503))  # fmt: skip
        api.add("GET", "/api/owners", self.list_owners, tag=tag,
                summary="Every owner with Stripe's flags", response=list[OwnerOut])  # fmt: skip
        api.add("GET", "/api/owners/{id}", self.get_owner, tag=tag, response=OwnerDetails,
                summary="An owner: ready or not, Stripe's flags, requirements due, payouts",
                errors=(404,))  # fmt: skip
        api.add("POST", "/api/owners/{id}/onboarding-link", self.onboarding_link, tag=tag,
                summary="A new link to Stripe's hosted onboarding for the owner",
                response=OnboardingLinkOut, errors=(404, 409, 503))  # fmt: skip
        api.add("POST", "/api/owners/{id}/refresh", self.refresh_owner, tag=tag,
                summary="Read the owner's account again from Stripe", response=OwnerDetails,
                errors=(404, 503))  # fmt: skip

    async def create_owner(self, request: web.Request, body: NewOwner) -> OwnerOut:
        if not valid_email(body.email):
            raise ApiError(400, "invalid", "an e-mail address", "email")
        try:
            owner = await self._onboarding.add(
                body.id, body.name, body.email, body.country, actor_of(request)
            )
        except OwnerRefused as refused:
            raise _api_error(refused) from None
        except OwnerUnavailable as error:
            raise _unavailable(error) from None
        return owner_out(owner)

    async def list_owners(self, request: web.Request) -> list[OwnerOut]:
        return [owner_out(owner) for owner in await self._onboarding.owners.all()]

    async def get_owner(self, request: web.Request) -> OwnerDetails:
        owners = self._onboarding.owners
        owner = await owners.get(request.match_info["id"])
        if owner is None:
            raise not_found("owner")
        return owner_details(owner, await owners.payouts(owner.id))

    async def onboarding_link(self, request: web.Request) -> OnboardingLinkOut:
        try:
            link = await self._onboarding.link(request.match_info["id"], actor_of(request))
        except OwnerRefused as refused:
            raise _api_error(refused) from None
        except OwnerUnavailable as error:
            raise _unavailable(error) from None
        return OnboardingLinkOut(url=link.url, expires_at=link.expires_at)

    async def refresh_owner(self, request: web.Request) -> OwnerDetails:
        try:
            owner = await self._onboarding.refresh(request.match_info["id"])
        except OwnerRefused as refused:
            raise _api_error(refused) from None
        except OwnerUnavailable as error:
            raise _unavailable(error) from None
        return owner_details(owner, await self._onboarding.owners.payouts(owner.id))


# -- the pages Stripe sends the owner back to

_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "done.title": "Onboarding finished",
        "done.text": "Thank you: your details went to Stripe. Once Stripe has checked them, "
        "your share of the charging sessions is transferred to your account. If Stripe "
        "asks for more, ask the operator for a new onboarding link.",
        "expired.title": "Onboarding link expired",
        "expired.text": "This onboarding link has expired or was used already. "
        "Ask the operator for a new link.",
    },
    "de": {
        "done.title": "Einrichtung abgeschlossen",
        "done.text": "Danke: Ihre Angaben sind bei Stripe. Sobald Stripe sie geprüft hat, wird "
        "Ihr Anteil an den Ladevorgängen auf Ihr Konto überwiesen. Braucht Stripe mehr, "
        "bitten Sie den Betreiber um einen neuen Einrichtungslink.",
        "expired.title": "Einrichtungslink abgelaufen",
        "expired.text": "Dieser Einrichtungslink ist abgelaufen oder wurde schon benutzt. "
        "Bitten Sie den Betreiber um einen neuen Link.",
    },
}


class OnboardingPages:
    def __init__(self) -> None:
        self._templates = Environment(
            loader=PackageLoader("payments.web"), autoescape=select_autoescape(["html"])
        )

    def register(self, app: web.Application) -> None:
        app.router.add_get(DONE_PATH, self.done)
        app.router.add_get(EXPIRED_PATH, self.expired)

    async def done(self, request: web.Request) -> web.Response:
        return self._page(request, "done", problem=False)

    async def expired(self, request: web.Request) -> web.Response:
        return self._page(request, "expired", problem=True)

    def _page(self, request: web.Request, kind: str, *, problem: bool) -> web.Response:
        chosen = language.choose(
            request.query, request.cookies, request.headers.get("Accept-Language")
        )
        t = Texts(chosen)
        words = _WORDS.get(t.language, _WORDS["en"])
        values: dict[str, Any] = {
            "t": t,
            "lang": t.language,
            "languages": [],
            "title": words[f"{kind}.title"],
            "text": words[f"{kind}.text"],
            "problem": problem,
        }
        html = self._templates.get_template("message.html").render(**values)
        response = web.Response(text=html, content_type="text/html")
        response.headers["Content-Language"] = t.language
        response.headers["Cache-Control"] = "no-store"
        return response
