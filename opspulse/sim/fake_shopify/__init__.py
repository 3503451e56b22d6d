"""A fake Shopify for tests and the demo: one HTTP server, one app, many shops.

It follows Shopify's documented contract (PROTOCOLS.md §1–3) closely enough that a
client written against Shopify's documentation works against it unchanged. State is in
memory; nothing touches OpsPulse's database.

Start it with `manage.py fake_shopify --port 8701 --client-id ID --client-secret SECRET
--redirect-prefix http://127.0.0.1:8000/`, or in-process with
`ServerThread(create_app(AppSettings(...)))` from `opspulse.sim.fake_shopify.app`.
OpsPulse reaches shop `harbor-goods.myshopify.com` at
`http://127.0.0.1:8701/shops/harbor-goods.myshopify.com` (shop URL template
`http://127.0.0.1:<port>/shops/{shop}`).

Shopify's endpoints, each under /shops/<shop-domain>:

- GET  /admin/oauth/authorize?client_id&scope&redirect_uri&state[&grant_options[]=per-user]
  "Install app" page; its form POSTs to the same path, which redirects to
  redirect_uri?code&hmac&host&shop&state&timestamp. Codes are single use, 60 s.
- POST /admin/oauth/access_token  {client_id, client_secret, code, expiring: "1"} or
  {client_id, client_secret, grant_type: "refresh_token", refresh_token}.
- POST /admin/api/<version>/graphql.json  with X-Shopify-Access-Token: shop, order(s),
  ordersCount, productVariantsCount, inventoryItems, webhookSubscriptions, currentBulkOperation; webhookSubscriptionCreate,
  webhookSubscriptionDelete, bulkOperationRunQuery (schema in `schema.SDL`). Costs and
  throttling follow Shopify's leaky bucket: 1000 points, 100 restored per second.

Control API under /_fake (JSON, no auth):

- GET  /shops                               list shops (each with its order count and first order's time)
- POST /shops  {domain, name, currency?, timezone?, email?, plan?, orders?, days?, seed?}
                                            create a shop with `orders` past orders
- GET  /shops/<shop>                        details: variants (SKUs, stock), subscriptions
- POST /shops/<shop>/orders  {lines?: [{sku, quantity}], financial_status?, seed?}
                                            place an order → orders/create, inventory_levels/update
- POST /shops/<shop>/orders/<id>  {financial_status?, fulfillment_status?}  → orders/updated
- POST /shops/<shop>/orders/<id>/cancel  {restock?}  → orders/cancelled, orders/updated
- POST /shops/<shop>/inventory  {sku, available}     → inventory_levels/update
- POST /shops/<shop>/products  {title, sku, price, available?}
                                            a new product with one variant → inventory_levels/update
- POST /shops/<shop>/carts  {lines: [{sku, quantity}]} → carts/create
- POST /shops/<shop>/uninstall              → app/uninstalled; tokens and subscriptions revoked
- POST /shops/<shop>/redact                 → shop/redact (after an uninstall)
- POST /shops/<shop>/customers/redact  {email}        → customers/redact
- POST /shops/<shop>/customers/data_request  {email}  → customers/data_request
- POST /shops/<shop>/grant  {scopes: [...]}  what the next install grants, whatever is asked
- POST /shops/<shop>/tokens/expire          expire the shop's access tokens now
- POST /shops/<shop>/tokens/refresh-failures  {count, status?: 503, retry_after?}
                                            answer the next `count` token refreshes with `status`
- GET  /shops/<shop>/calls                  GraphQL call log and max calls in any second
- GET  /shops/<shop>/launch?app_url=…       redirect to the app URL with shop, host, timestamp, hmac
- POST /clock/advance  {seconds}            move the fake's clock forward
- GET  /webhooks/deliveries?shop=&topic=    every delivery attempt with its status
- POST /webhooks/flush                      wait for pending deliveries and bulk runs
- GET|PUT /app/webhooks  {topic: [uri, …]}  the app's own (TOML) subscriptions; the only
                                            way to receive the compliance topics
- PUT  /bulk/delay  {seconds}                how long a bulk operation stays CREATED, then RUNNING
- GET  /bulk/<id>.jsonl                     a completed bulk operation's result
"""
