"""The functions-runtime.md §10 test vectors shared by the API tests: the source functions S1
(§10.1) and S2 (§10.2), the destination function D1 (§10.3), and S1's inputs and output. Both
test_functions.py (through preview and the server) and test_functions_runtime.py (through
`manifold function run`) run them, so the code under test is written down once."""

S1 = """async function onRequest(request, settings) {
  const body = request.json()
  if (body.kind !== 'payment.settled') {
    console.log('ignored kind', body.kind)
    return
  }
  const p = body.payment
  Segment.identify({ userId: p.customer_ref, traits: { email: p.email } })
  Segment.track({
    event: 'Payment Settled',
    userId: p.customer_ref,
    properties: { amount: p.amount_minor / 100, currency: p.currency.toUpperCase(), paymentId: p.id },
    timestamp: p.settled_at
  })
}"""

S2 = """async function onRequest(request, settings) {
  const token = request.headers.get('X-Hook-Token')
  if (token !== settings.hookToken) {
    throw new ValidationError('bad hook token')
  }
  const store = request.url.searchParams.get('store') || 'default'
  const items = request.json().items || []
  for (const item of items) {
    Segment.set({ collection: 'products', id: item.sku, properties: { title: item.title, store } })
  }
  console.log('stored', items.length, 'items for', store)
}"""

D1 = """async function onTrack(event, settings) {
  const revenue = event.properties && event.properties.revenue
  if (typeof revenue !== 'number') {
    throw new InvalidEventPayload('properties.revenue must be a number')
  }
  const res = await fetch(settings.endpoint, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: 'Basic ' + btoa(settings.apiKey + ':') },
    body: JSON.stringify({ name: event.event, user: event.userId, value: revenue })
  })
  if (res.status === 429 || res.status >= 500) {
    throw new RetryError('upstream status ' + res.status)
  }
  if (!res.ok) {
    throw new ValidationError('upstream rejected: ' + res.status)
  }
  console.log('sent', event.messageId)
  return { status: res.status }
}
async function onIdentify(event, settings) {
  throw new EventNotSupported('identify is not supported')
}"""

S1A_BODY = {"kind": "payment.settled", "payment": {"id": "pay_9", "customer_ref": "cust-42", "email": "ann@example.com",
                                                   "amount_minor": 1999, "currency": "eur",
                                                   "settled_at": "2024-05-01T10:00:00Z"}}
S1A_OUT = {"events": [{"type": "identify", "userId": "cust-42", "traits": {"email": "ann@example.com"}},
                      {"type": "track", "event": "Payment Settled", "userId": "cust-42",
                       "properties": {"amount": 19.99, "currency": "EUR", "paymentId": "pay_9"},
                       "timestamp": "2024-05-01T10:00:00Z"}], "objects": []}
S1C_BODY = {"kind": "payment.settled", "payment": {"id": "pay_1", "email": "x@example.com", "amount_minor": 5,
                                                   "currency": "usd"}}

