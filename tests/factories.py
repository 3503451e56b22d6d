"""factory_boy factories for OpsPulse's models, shared by every app's tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import factory
from allauth.account.models import EmailAddress
from django.utils import timezone

from opspulse.accounts.models import Account, Membership, Role, User
from opspulse.alerts.models import Alert, AlertEvent, AlertType
from opspulse.commerce.models import Cart, InventoryLevel, Order, OrderStatus
from opspulse.metrics.models import Metric
from opspulse.stores.models import Platform, Store


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    name = factory.Faker("first_name")
    password = factory.django.Password("correct horse battery staple")

    @factory.post_generation
    def confirmed_email(obj, create, extracted, **kwargs):  # noqa: N805 - factory_boy's hook signature
        """Users made here have confirmed their address unless `confirmed_email=False`."""
        if create and extracted is not False:
            EmailAddress.objects.create(user=obj, email=obj.email, verified=True, primary=True)


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    name = factory.Sequence(lambda n: f"Account {n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    account = factory.SubFactory(AccountFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.OWNER


class StoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Store

    account = factory.SubFactory(AccountFactory)
    name = factory.Sequence(lambda n: f"Store {n}")
    platform = Platform.SHOPIFY
    domain = factory.Sequence(lambda n: f"store-{n}.myshopify.com")
    timezone = "America/New_York"
    currency = "USD"
    # An established store: its history reaches back past any day a test compares with.
    history_starts_at = datetime(2020, 1, 1, tzinfo=UTC)


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    store = factory.SubFactory(StoreFactory)
    external_id = factory.Sequence(lambda n: str(5000000 + n))
    number = factory.Sequence(lambda n: f"#{1001 + n}")
    status = OrderStatus.PAID
    currency = factory.SelfAttribute("store.currency")
    total = Decimal("59.00")
    units = 1
    customer_first_name = "Ada"
    customer_city = "London"
    placed_at = factory.LazyFunction(timezone.now)
    platform_updated_at = factory.SelfAttribute("placed_at")
    counted_revenue = factory.SelfAttribute("total")
    counted_units = factory.SelfAttribute("units")
    counted_orders = 1


class MetricFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Metric

    store = factory.SubFactory(StoreFactory)


class InventoryLevelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = InventoryLevel

    store = factory.SubFactory(StoreFactory)
    item_external_id = factory.Sequence(lambda n: str(800000 + n))
    title = factory.Sequence(lambda n: f"Product {n}")
    sku = factory.Sequence(lambda n: f"SKU-{n}")
    available = 3
    platform_updated_at = factory.LazyFunction(timezone.now)


class CartFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Cart

    store = factory.SubFactory(StoreFactory)
    external_id = factory.Sequence(lambda n: f"cart-{n}")
    item_count = 2
    value = Decimal("40.00")
    platform_created_at = factory.LazyFunction(lambda: timezone.now() - timedelta(minutes=5))
    platform_updated_at = factory.LazyFunction(timezone.now)


class AlertFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Alert

    store = factory.SubFactory(StoreFactory)
    type = AlertType.LOW_STOCK
    config = factory.LazyFunction(lambda: {"threshold": 5})


class AlertEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AlertEvent

    alert = factory.SubFactory(AlertFactory)
    store = factory.SelfAttribute("alert.store")
    subject = factory.Sequence(lambda n: f"item:{n}")
    message = "Only 2 left of Linen shirt"
