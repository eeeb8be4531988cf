-- One login role and one database per service, for running all four on ONE PostgreSQL server
-- (docker-compose.yml gives each service a server of its own instead). Run as a superuser:
--   psql -v ON_ERROR_STOP=1 -v customer_password=... -v visit_password=... \
--        -v orders_password=... -v reporting_password=... -f deploy/postgres/init.sql
-- Each database is closed to PUBLIC, so a service's role can connect to its own database only,
-- and only the owner may create objects in its public schema.

CREATE ROLE customer LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'customer_password';
CREATE DATABASE customer OWNER customer ENCODING 'UTF8' TEMPLATE template0;
REVOKE ALL ON DATABASE customer FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE customer TO customer;

CREATE ROLE visit LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'visit_password';
CREATE DATABASE visit OWNER visit ENCODING 'UTF8' TEMPLATE template0;
REVOKE ALL ON DATABASE visit FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE visit TO visit;

CREATE ROLE orders LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'orders_password';
CREATE DATABASE orders OWNER orders ENCODING 'UTF8' TEMPLATE template0;
REVOKE ALL ON DATABASE orders FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE orders TO orders;

CREATE ROLE reporting LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'reporting_password';
CREATE DATABASE reporting OWNER reporting ENCODING 'UTF8' TEMPLATE template0;
REVOKE ALL ON DATABASE reporting FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE reporting TO reporting;

\connect customer
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO customer;

\connect visit
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO visit;

\connect orders
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO orders;

\connect reporting
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO reporting;
