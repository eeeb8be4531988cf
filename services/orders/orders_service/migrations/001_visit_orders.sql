-- What the visit_orders reactor keeps (orders_service.application.reactor): visit orders that
-- arrived before their customer did, placed when it arrives, and visit messages that broke a
-- rule here, with the reason. Older releases kept both in the customer directory's projection
-- schema; what they kept is copied here.
CREATE TABLE IF NOT EXISTS public.parked_orders (
    order_id        text PRIMARY KEY,
    customer_id     text NOT NULL,
    envelope        jsonb NOT NULL,
    parked_at       timestamptz NOT NULL,
    reason          text NOT NULL,
    outcome         text,
    settled_at      timestamptz
);
CREATE INDEX IF NOT EXISTS parked_orders_waiting ON public.parked_orders (customer_id) WHERE outcome IS NULL;
CREATE TABLE IF NOT EXISTS public.visit_messages_refused (
    event_id        uuid PRIMARY KEY,
    event_type      text NOT NULL,
    order_id        text,
    customer_id     text,
    code            text NOT NULL,
    detail          jsonb NOT NULL,
    at              timestamptz NOT NULL
);
DO $$
DECLARE
    directory text;
BEGIN
    SELECT active_schema INTO directory FROM public.projections WHERE name = 'customer_directory';
    IF directory IS NOT NULL AND to_regclass(directory || '.parked_orders') IS NOT NULL THEN
        EXECUTE format('INSERT INTO public.parked_orders SELECT order_id, customer_id, envelope, parked_at,'
                       ' reason, outcome, settled_at FROM %I.parked_orders ON CONFLICT DO NOTHING', directory);
        EXECUTE format('INSERT INTO public.visit_messages_refused SELECT event_id, event_type, order_id,'
                       ' customer_id, code, detail, at FROM %I.visit_messages_refused ON CONFLICT DO NOTHING',
                       directory);
    END IF;
END
$$;
