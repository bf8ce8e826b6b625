# The demo shop of scripts/dev: a small catalogue and a demo customer, created through the api
# (which validates them and records the stock in its ledger), and a walk-through that uses
# them. scripts/dev seeds it unless told --no-demo; nothing else does.
# shellcheck shell=bash

DEMO_EMAIL="demo@example.com"
DEMO_PASSWORD="demo-customer"

# "name|description|price in cents|stock": the grinder's short stock shows a rejection.
DEMO_PRODUCTS=(
    "Espresso cup|Porcelain, 90 ml|850|40"
    "Pour-over kettle|Gooseneck, 1 litre|3900|10"
    "Coffee beans, 1 kg|Washed Ethiopian, medium roast|2400|25"
    "Paper filters|Box of 100|450|100"
    "Hand grinder|Limited series: only two left|12900|2"
)

json_string() {
    local s=${1//\\/\\\\}
    s=${s//\"/\\\"}
    printf '"%s"' "${s}"
}

# demo_seed API_BASE (e.g. http://127.0.0.1:8080): registers the demo customer unless it
# exists, and fills the catalogue when it is empty, as the ADMIN named by ADMIN_EMAIL and
# ADMIN_PASSWORD. Running it again changes nothing.
demo_seed() {
    local api=$1 status jar
    status="$(curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
        -d "{\"email\":$(json_string "${DEMO_EMAIL}"),\"password\":$(json_string "${DEMO_PASSWORD}"),\"name\":\"Demo Customer\"}" \
        "${api}/api/v1/auth/register")"
    case "${status}" in
        201) log "demo customer ${DEMO_EMAIL} registered" ;;
        409) ;; # registered by an earlier run
        *) die "registering the demo customer answered ${status}" ;;
    esac

    if ! curl -fsS "${api}/api/v1/products?limit=1" | grep -q '"items":\[\]'; then
        return 0 # the shop already has a catalogue: leave it as it is
    fi
    [ -n "${ADMIN_EMAIL:-}" ] && [ -n "${ADMIN_PASSWORD:-}" ] \
        || die "seeding the demo catalogue needs ADMIN_EMAIL and ADMIN_PASSWORD"
    jar="$(mktemp)"
    status="$(curl -s -o /dev/null -w '%{http_code}' -c "${jar}" -H 'content-type: application/json' \
        -d "{\"email\":$(json_string "${ADMIN_EMAIL}"),\"password\":$(json_string "${ADMIN_PASSWORD}")}" \
        "${api}/api/v1/auth/login")"
    [ "${status}" = 200 ] || { rm -f "${jar}"; die "logging in as ${ADMIN_EMAIL} answered ${status}"; }
    local line name description price stock
    for line in "${DEMO_PRODUCTS[@]}"; do
        IFS='|' read -r name description price stock <<<"${line}"
        status="$(curl -s -o /dev/null -w '%{http_code}' -b "${jar}" -H 'content-type: application/json' \
            -d "{\"name\":$(json_string "${name}"),\"description\":$(json_string "${description}"),\"price\":${price},\"stock\":${stock}}" \
            "${api}/api/v1/products")"
        [ "${status}" = 201 ] || { rm -f "${jar}"; die "creating the demo product ${name} answered ${status}"; }
    done
    rm -f "${jar}"
    log "demo catalogue of ${#DEMO_PRODUCTS[@]} products created"
}

# demo_walkthrough API_BASE: prints copy-paste commands that log in as the demo customer,
# place an order waiting for its outcome, follow it and cancel it (the README's quick start
# shows the same). Every command line is indented by four spaces.
demo_walkthrough() {
    local api=$1
    cat <<MSG
  Demo shop: ${#DEMO_PRODUCTS[@]} products and the customer ${DEMO_EMAIL} (password ${DEMO_PASSWORD}).
  Try it in another shell (scripts/dev --no-demo starts an empty shop):

    API=${api}/api/v1
    JAR=\$(mktemp)
    first_id() { grep -o '"id":"[^"]*"' | head -n 1 | cut -d '"' -f 4; }
    # 1. Log in as the demo customer; curl keeps the cookies, as a browser would
    curl -s -w '\n' -c "\$JAR" -H 'content-type: application/json' \\
      -d '{"email":"${DEMO_EMAIL}","password":"${DEMO_PASSWORD}"}' "\$API/auth/login"
    # 2. Find the kettle in the catalogue
    KETTLE=\$(curl -s "\$API/products?q=kettle&limit=1" | first_id)
    # 3. Order two, waiting up to 5 s for the outcome: 201 with the order CONFIRMED
    curl -s -w '\n' -b "\$JAR" -H 'content-type: application/json' -H 'prefer: wait=5' \\
      -d "{\"items\":[{\"product_id\":\"\$KETTLE\",\"quantity\":2}]}" "\$API/orders"
    # 4. Follow it: your newest order, its status and timeline
    ORDER=\$(curl -s -b "\$JAR" "\$API/orders?limit=1" | first_id)
    curl -s -w '\n' -b "\$JAR" "\$API/orders/\$ORDER"
    # 5. Cancel it: the two kettles go back into stock
    curl -s -w '\n' -b "\$JAR" -X POST -H 'prefer: wait=5' "\$API/orders/\$ORDER/cancel"

MSG
}

# demo_after_sale API_BASE: prints copy-paste commands that take a demo order through the steps
# after the sale: the customer orders three cups, staff (ADMIN_EMAIL, ADMIN_PASSWORD) take the
# payment by hand, ship two cups then the last one, both parcels arrive, the customer sends one
# cup back and staff receive it into stock (the README shows the same). Every command line is
# indented by four spaces.
demo_after_sale() {
    local api=$1
    cat <<MSG
  After the sale: a split shipment and a return (staff log in with ADMIN_EMAIL and ADMIN_PASSWORD):

    API=${api}/api/v1
    CUSTOMER=\$(mktemp) STAFF=\$(mktemp)
    first_id() { grep -o '"id":"[^"]*"' | head -n 1 | cut -d '"' -f 4; }
    login() { curl -s -o /dev/null -c "\$1" -H 'content-type: application/json' -d "{\"email\":\"\$2\",\"password\":\"\$3\"}" "\$API/auth/login"; }
    post() { curl -s -w '\n' -b "\$1" -H 'content-type: application/json' -H 'prefer: wait=5' -d "\$3" "\$API/orders/\$ORDER\$2"; }
    login "\$CUSTOMER" ${DEMO_EMAIL} ${DEMO_PASSWORD}; login "\$STAFF" "\$ADMIN_EMAIL" "\$ADMIN_PASSWORD"
    # 1. The customer orders three espresso cups; staff take the payment by hand
    CUP=\$(curl -s "\$API/products?q=espresso&limit=1" | first_id)
    ORDER=\$(curl -s -b "\$CUSTOMER" -H 'content-type: application/json' -H 'prefer: wait=5' -d "{\"items\":[{\"product_id\":\"\$CUP\",\"quantity\":3}]}" "\$API/orders" | first_id)
    curl -s -o /dev/null -b "\$STAFF" -X PATCH -H 'content-type: application/json' -H 'prefer: wait=5' -d '{"status":"PAID"}' "\$API/orders/\$ORDER/status"
    # 2. Two cups ship today (PARTIALLY_SHIPPED), the last one tomorrow (SHIPPED)
    post "\$STAFF" /fulfilments "{\"lines\":[{\"product_id\":\"\$CUP\",\"quantity\":2}],\"carrier\":\"UPS\",\"tracking_number\":\"1Z001\"}"
    post "\$STAFF" /fulfilments "{\"lines\":[{\"product_id\":\"\$CUP\",\"quantity\":1}],\"carrier\":\"UPS\",\"tracking_number\":\"1Z002\"}"
    # 3. Both parcels arrive: DELIVERED once the second one does
    for F in \$(curl -s -b "\$STAFF" "\$API/orders/\$ORDER" | grep -o '"id":"[^"]*","lines"' | cut -d '"' -f 4); do post "\$STAFF" "/fulfilments/\$F/delivered" ''; done
    # 4. The customer sends one cup back; staff receive it into stock (its value is refunded)
    RETURN=\$(post "\$CUSTOMER" /returns "{\"lines\":[{\"product_id\":\"\$CUP\",\"quantity\":1}],\"reason\":\"chipped\"}" | grep -o '"returns":\[{"id":"[^"]*"' | cut -d '"' -f 6)
    post "\$STAFF" "/returns/\$RETURN/receive" "{\"lines\":[{\"product_id\":\"\$CUP\",\"restock\":true}]}"

MSG
}
