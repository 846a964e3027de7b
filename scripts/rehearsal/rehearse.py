"""The deploy rehearsal: template.yaml translated by aws-sam-translator and created as a
stack on a moto server (CloudFormation, S3, IAM, DynamoDB, SQS, Lambda, Secrets Manager,
Logs, CloudWatch), then the real receiver, worker and links binaries run under
`cargo lambda watch` with exactly the environment the stack gives each function and with
credentials that carry only that function's role policies, moto checking every request
against them. Lambda's SQS event source mapping is emulated from the stack's own settings.

Run by scripts/rehearse.sh (which starts moto, the provider simulator and the functions);
this file does the AWS side and the checks. Phases, each a subcommand:

  deploy   translate + create the stack, write one env file per function, create one IAM
           user per function from its role's policies, turn IAM enforcement on
  drive    deliveries through the receiver, the event source mapping loop, the checks

Standard library + boto3 (installed with moto) + samtranslator (installed with
aws-sam-cli) only.
"""

import ast
import io
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

REGION = "us-east-1"
# samtranslator reads the region from the environment.
os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
STACK = "genhook-rehearsal"
# The functions, as the template names them, and their binaries.
FUNCTIONS = {"ReceiverFunction": "receiver", "WorkerFunction": "worker", "LinksFunction": "links"}
# Test values for the stack's secret parameters: the checks look for them in the logs.
SECRETS = {
    "KataloWebhookSecret": "whsec_rehearsal_katalo_0001",
    "KataloApiKey": "sim_katalo_local_key",
    "ApimpCallbackSecret": "apimp_rehearsal_callback_0001",
    "ApimpApiKey": "sim_katalo_local_key",
    "ReplicateWebhookSecret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "ReplicateApiToken": "sim_katalo_local_key",
}


def fail(message):
    print(f"[rehearsal] FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def log(message):
    print(f"[rehearsal] {message}", file=sys.stderr)


def client(service, endpoint, key="test", secret="test"):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 2}),
    )


def state_path(work, name):
    return os.path.join(work, name)


def save(work, name, data):
    with open(state_path(work, name), "w") as f:
        json.dump(data, f, indent=2, default=str)


def load(work, name):
    with open(state_path(work, name)) as f:
        return json.load(f)


# ---------------------------------------------------------------------------------------
# deploy
# ---------------------------------------------------------------------------------------


def translate(template_path, s3, iam):
    """template.yaml → plain CloudFormation, each function's code a dummy zip on S3."""
    from samtranslator.public.translator import ManagedPolicyLoader
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    with open(template_path) as f:
        template = yaml_parse(f.read())
    s3.create_bucket(Bucket="genhook-rehearsal-code")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        # The binaries run under cargo lambda watch; moto only stores the code.
        z.writestr("bootstrap", "#!/bin/sh\nexit 1\n")
    for name, resource in template["Resources"].items():
        if resource.get("Type") == "AWS::Serverless::Function":
            key = f"{name}.zip"
            s3.put_object(Bucket="genhook-rehearsal-code", Key=key, Body=buf.getvalue())
            resource.setdefault("Properties", {})["CodeUri"] = f"s3://genhook-rehearsal-code/{key}"
    template.get("Globals", {}).get("Function", {}).pop("CodeUri", None)
    return transform(template, {}, ManagedPolicyLoader(iam))


def check_sweep_schedule(events, sqs, resources, body):
    """The Replicate sweep's rule puts its first message on the inbox, which lets only it in."""
    rule = resources["ReplicateSweepRule"]["PhysicalResourceId"]
    described = events.describe_rule(Name=rule)
    if described.get("ScheduleExpression") != "rate(10 minutes)":
        fail(f"the sweep rule's schedule is {described.get('ScheduleExpression')!r}")
    inbox_url = resources["InboxQueue"]["PhysicalResourceId"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    targets = events.list_targets_by_rule(Rule=rule)["Targets"]
    if [t["Arn"] for t in targets] != [inbox_arn]:
        fail(f"the sweep rule targets {targets}, not the inbox")
    message = json.loads(targets[0]["Input"])
    if message != {"type": "replicate.sweep", "dedupe_key": "replicate#sweep", "lookback_secs": 3600}:
        fail(f"the sweep rule sends {message}")
    if "InboxQueuePolicy" not in body["Resources"]:
        fail("the template has no InboxQueuePolicy for the sweep rule")
    # moto's CloudFormation creates no AWS::SQS::QueuePolicy, so without one on the queue
    # the statement is read from the template as deployed.
    attributes = sqs.get_queue_attributes(QueueUrl=inbox_url, AttributeNames=["Policy"]).get("Attributes", {})
    policy = json.loads(attributes["Policy"]) if "Policy" in attributes else body["Resources"]["InboxQueuePolicy"]["Properties"]["PolicyDocument"]
    statements = policy.get("Statement", [])
    if [(s.get("Principal", {}).get("Service"), s.get("Action")) for s in statements] != [("events.amazonaws.com", "sqs:SendMessage")]:
        fail(f"the inbox's policy lets in {statements}, not the sweep rule alone")
    if "aws:SourceArn" not in json.dumps(statements):
        fail("the inbox's policy does not name the sweep rule")
    log(f"the Replicate sweep starts every 10 minutes on the inbox ({rule})")


def create_stack(cfn, body, parameters):
    params = [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()]
    cfn.create_stack(StackName=STACK, TemplateBody=json.dumps(body), Parameters=params, Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"])
    for _ in range(300):
        stack = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
        status = stack["StackStatus"]
        if status == "CREATE_COMPLETE":
            return stack
        if status.endswith("FAILED") or status.startswith("ROLLBACK"):
            events = cfn.describe_stack_events(StackName=STACK)["StackEvents"]
            reasons = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}" for e in events if "FAILED" in e["ResourceStatus"]]
            fail(f"stack {status}: {reasons}")
        time.sleep(0.2)
    fail("the stack was not created within 60 s")


def document(doc):
    """A policy document as a dict. IAM may hand it back URL-encoded; moto hands back the
    policies CloudFormation gave a role as a Python literal."""
    if not isinstance(doc, str):
        return doc
    text = urllib.parse.unquote(doc)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return ast.literal_eval(text)


def role_policies(iam, role_arn):
    """Every policy document the role carries (inline and attached)."""
    role = role_arn.rsplit("/", 1)[-1]
    docs = []
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        docs.append((name, document(iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])))
    for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
        policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
        version = iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=policy["DefaultVersionId"])
        docs.append((attached["PolicyName"], document(version["PolicyVersion"]["Document"])))
    return docs


def for_moto(doc, scoped):
    """moto matches no DynamoDB statement whose Resource is the table's ARN, nor a
    Secrets Manager one naming the secret's ARN (tooling notes): such statements are
    checked here against the stack's own resources (`scoped`: action prefix → allowed
    ARNs), then widened to "*" so moto still checks their actions."""
    doc = json.loads(json.dumps(doc))
    # SAM writes its inline policies without a Version, which IAM reads as 2008-10-17.
    doc.setdefault("Version", "2012-10-17")
    statements = doc.get("Statement", [])
    for statement in [statements] if isinstance(statements, dict) else statements:
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        # AWS authorizes SQS's batch calls by the single call's action; moto checks the
        # batch call's own name, so grant it alongside, exactly where AWS would.
        batch = [f"{a}Batch" for a in actions if a in ("sqs:SendMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility")]
        if batch:
            statement["Action"] = actions + batch
        for prefix, allowed in scoped.items():
            if any(a.startswith(prefix + ":") for a in actions):
                resources = statement.get("Resource", [])
                resources = [resources] if isinstance(resources, str) else resources
                if not resources or any(r not in allowed for r in resources):
                    fail(f"a {prefix} statement is not scoped to the stack's resources: {resources}")
                statement["Resource"] = "*"
    return doc


def resolve(expr, refs, conditions):
    """The few intrinsics the template uses around secrets: Ref, Fn::If, Fn::Join."""
    if isinstance(expr, list):
        return [resolve(e, refs, conditions) for e in expr]
    if isinstance(expr, dict) and len(expr) == 1:
        (fn, arg), = expr.items()
        if fn == "Ref":
            if arg not in refs:
                fail(f"cannot resolve Ref {arg}")
            return refs[arg]
        if fn == "Fn::If":
            name, yes, no = arg
            return resolve(yes if conditions[name] else no, refs, conditions)
        if fn == "Fn::Join":
            sep, items = arg
            return sep.join(resolve(items, refs, conditions))
    return expr


def stand_in_for_secrets(body, parameters, sm, generated):
    """moto's CloudFormation skips AWS::SecretsManager::Secret (the stack reports no such
    resource, and Refs to it resolve to nothing). Create the template's secrets the way
    CloudFormation would, from its own properties, and return their ARNs by logical id."""
    import secrets as random

    arns = {}
    for logical, resource in body["Resources"].items():
        if resource.get("Type") != "AWS::SecretsManager::Secret":
            continue
        props = resource.get("Properties", {})
        if "SecretString" in props:
            text = props["SecretString"].get("Fn::Sub", props["SecretString"])
            for name, value in parameters.items():
                text = text.replace("${" + name + "}", value)
            for name in body.get("Parameters", {}):
                text = text.replace("${" + name + "}", str(body["Parameters"][name].get("Default", "")))
        else:
            gen = props["GenerateSecretString"]
            value = random.token_urlsafe(gen.get("PasswordLength", 32))[: gen.get("PasswordLength", 32)]
            template = json.loads(gen.get("SecretStringTemplate", "{}"))
            template[gen["GenerateStringKey"]] = value
            text = json.dumps(template)
        arns[logical] = sm.create_secret(Name=f"{STACK}-{logical}", SecretString=text)["ARN"]
        generated.extend(v for v in json.loads(text).values() if isinstance(v, str) and len(v) >= 16)
    return arns


def deploy(args):
    template, work, moto_url, sim_url, links_url = args
    os.makedirs(work, exist_ok=True)
    s3, iam, cfn = (client(s, moto_url) for s in ("s3", "iam", "cloudformation"))
    started = time.time()
    body = translate(template, s3, iam)
    parameters = dict(SECRETS)
    parameters.update({"KataloApiBaseUrl": sim_url, "ApimpApiBaseUrl": sim_url, "ReplicateApiBaseUrl": sim_url,
                       "KataloApiMaxRps": "20",
                       # The simulator serves the output files itself, over plain http on loopback.
                       "KataloOutputHosts": sim_url, "ApimpOutputHosts": sim_url, "ReplicateOutputHosts": sim_url})
    stack = create_stack(cfn, body, parameters)
    generated = []
    secret_arns = stand_in_for_secrets(body, parameters, client("secretsmanager", moto_url), generated)
    refs = dict(secret_arns, SecretArn="")
    conditions = {"CreateProviderSecret": True}
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    log(f"stack created in {time.time() - started:.1f} s with {len(outputs)} outputs")

    resources = {r["LogicalResourceId"]: r for r in cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]}
    lam, ddb = client("lambda", moto_url), client("dynamodb", moto_url)
    table = resources["DedupeTable"]["PhysicalResourceId"]
    table_arn = ddb.describe_table(TableName=table)["Table"]["TableArn"]
    scoped = {"dynamodb": [table_arn], "secretsmanager": list(secret_arns.values())}
    functions = {}
    for logical, binary in FUNCTIONS.items():
        name = resources[logical]["PhysicalResourceId"]
        config = lam.get_function_configuration(FunctionName=name)
        env = config.get("Environment", {}).get("Variables", {})
        docs = role_policies(iam, config["Role"])
        # Put back what moto could not resolve: the secrets' ARNs, the API's URL.
        template_env = body["Resources"][logical]["Properties"].get("Environment", {}).get("Variables", {})
        if "GENHOOK_SECRET_IDS" in template_env:
            env["GENHOOK_SECRET_IDS"] = resolve(template_env["GENHOOK_SECRET_IDS"], refs, conditions)
        role_logical = config["Role"].rsplit("/", 1)[-1][len(STACK) + 1 :].rsplit("-", 1)[0]
        template_statements = {
            st.get("Sid"): st
            for policy in body["Resources"][role_logical]["Properties"].get("Policies", [])
            for st in policy["PolicyDocument"]["Statement"]
        }
        for _, doc in docs:
            for st in doc.get("Statement", []):
                if not st.get("Resource") or None in (st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]):
                    st["Resource"] = resolve(template_statements[st["Sid"]]["Resource"], refs, conditions)
        user = f"rehearsal-{binary}"
        iam.create_user(UserName=user)
        for policy_name, doc in docs:
            iam.put_user_policy(UserName=user, PolicyName=policy_name, PolicyDocument=json.dumps(for_moto(doc, scoped)))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        functions[binary] = {
            "name": name,
            "env": env,
            "timeout": config.get("Timeout"),
            "memory": config.get("MemorySize"),
            "role": config["Role"],
            "policies": [d for _, d in docs],
            "key": key["AccessKeyId"],
            "secret": key["SecretAccessKey"],
        }
        log(f"{binary}: {len(env)} variables, timeout {config.get('Timeout')} s, {len(docs)} policies")
    check_sweep_schedule(client("events", moto_url), client("sqs", moto_url), resources, body)
    mappings = lam.list_event_source_mappings(FunctionName=functions["worker"]["name"])["EventSourceMappings"]
    if len(mappings) != 1:
        fail(f"expected one event source mapping on the worker, found {len(mappings)}")

    # The operator: everything, for driving and checking (the functions never use it).
    iam.create_user(UserName="rehearsal-admin")
    iam.put_user_policy(
        UserName="rehearsal-admin",
        PolicyName="admin",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
    )
    admin = iam.create_access_key(UserName="rehearsal-admin")["AccessKey"]
    save(work, "stack.json", {
        "outputs": outputs,
        "resources": {k: v["PhysicalResourceId"] for k, v in resources.items()},
        "functions": functions,
        "mapping": mappings[0],
        "admin": {"key": admin["AccessKeyId"], "secret": admin["SecretAccessKey"]},
        "table_arn": table_arn,
        # Every secret value the stack holds (the links' generated key included): the
        # functions' logs must hold none of them.
        "secret_values": sorted(set(generated) | set(SECRETS.values())),
        "alarms": {
            logical: {k: r["Properties"].get(k) for k in ("AlarmDescription", "Threshold", "ComparisonOperator", "MetricName")}
            for logical, r in body["Resources"].items()
            if r.get("Type") == "AWS::CloudWatch::Alarm" and "Condition" not in r
        },
    })
    for binary, f in functions.items():
        write_env(work, moto_url, links_url, binary, f)
    # From here on moto checks every request against the caller's policies.
    req = urllib.request.Request(
        f"{moto_url}/moto-api/reset-auth", data=b"0", method="POST", headers={"Content-Type": "text/plain"}
    )
    urllib.request.urlopen(req).read()
    log("IAM enforcement on")


def write_env(work, moto_url, links_url, binary, f):
    with open(state_path(work, f"{binary}.timeout"), "w") as out:
        out.write(str(f["timeout"]))
    env = dict(f["env"])
    if "GENHOOK_PUBLIC_URL" in env:
        # moto leaves ${HttpApi} unresolved; the links function runs at links_url here.
        if "${HttpApi}" not in str(env["GENHOOK_PUBLIC_URL"]):
            fail(f"unexpected GENHOOK_PUBLIC_URL: {env['GENHOOK_PUBLIC_URL']}")
        env["GENHOOK_PUBLIC_URL"] = links_url
    env.update({
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": f["key"],
        "AWS_SECRET_ACCESS_KEY": f["secret"],
        "RUST_LOG": "info",
    })
    with open(state_path(work, f"{binary}.env"), "w") as out:
        for k, v in sorted(env.items()):
            v = str(v)
            if "\n" in v:
                fail(f"{binary}: variable {k} spans lines")
            out.write(f"{k}={v}\n")


# ---------------------------------------------------------------------------------------
# drive and check
# ---------------------------------------------------------------------------------------


def http(method, url, body=None, headers=None):
    """(status, headers, body) of one request; never follows redirects."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def signed_katalo(job_id, secret):
    import hashlib
    import hmac

    body = json.dumps({"event_type": "generation.completed", "job_id": job_id, "reference": f"ref-{job_id}", "outputs": []}).encode()
    return body, {"content-type": "application/json", "x-katalo-signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def sqs_event(messages, queue_arn):
    """The SQS event Lambda's event source mapping hands the worker."""
    records = []
    for m in messages:
        records.append({
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": {k: str(v) for k, v in m.get("Attributes", {}).items()},
            "messageAttributes": {
                k: {"stringValue": v.get("StringValue"), "dataType": v.get("DataType", "String"), "stringListValues": [], "binaryListValues": []}
                for k, v in m.get("MessageAttributes", {}).items()
            },
            "md5OfBody": m.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": REGION,
        })
    return {"Records": records}


def event_source_mapping(state, moto_url, worker_url, budget_s=120, idle_s=12):
    """Polls the inbox as Lambda's SQS event source does, with the worker role's rights:
    receive up to BatchSize, invoke the worker, delete what it did not report as failed."""
    worker = state["functions"]["worker"]
    mapping = state["mapping"]
    sqs = client("sqs", moto_url, worker["key"], worker["secret"])
    inbox = worker["env"]["GENHOOK_INBOX_QUEUE_URL"]
    batch = int(mapping.get("BatchSize", 10))
    partial = "ReportBatchItemFailures" in mapping.get("FunctionResponseTypes", [])
    if not partial:
        fail("the worker's event source mapping does not report batch item failures")
    deadline, last_work, invocations = time.time() + budget_s, time.time(), 0
    while time.time() < deadline:
        got = sqs.receive_message(
            QueueUrl=inbox, MaxNumberOfMessages=batch, WaitTimeSeconds=1,
            MessageAttributeNames=["All"], AttributeNames=["All"],
        ).get("Messages", [])
        if not got:
            attrs = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["All"])["Attributes"]
            pending = sum(int(attrs.get(a, 0)) for a in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"))
            if pending == 0 and time.time() - last_work > idle_s:
                return invocations
            continue
        last_work = time.time()
        invocations += 1
        status, _, body = http("POST", f"{worker_url}/2015-03-31/functions/_/invocations", json.dumps(sqs_event(got, mapping["EventSourceArn"])).encode())
        if status != 200:
            fail(f"the worker invocation answered {status}: {body[:300]!r}")
        failed = {f["itemIdentifier"] for f in json.loads(body or b"{}").get("batchItemFailures", [])}
        for m in got:
            if m["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=inbox, ReceiptHandle=m["ReceiptHandle"])
    fail(f"the inbox was not drained within {budget_s} s")


def drive(args):
    work, moto_url, receiver_url, worker_url, genhook = args
    state = load(work, "stack.json")
    admin = state["admin"]
    adm = lambda service: client(service, moto_url, admin["key"], admin["secret"])  # noqa: E731
    started = time.time()

    # Katalo: 5 jobs, each delivered twice (at-least-once), and 2 forgeries.
    secret = SECRETS["KataloWebhookSecret"]
    jobs = [f"job_rehearsal_{i}" for i in range(5)]
    for job in jobs:
        for _ in range(2):
            body, headers = signed_katalo(job, secret)
            status, _, answer = http("POST", f"{receiver_url}/webhooks/katalo", body, headers)
            if status != 200:
                fail(f"delivery of {job} answered {status}: {answer[:300]!r}")
    for i in range(2):
        body, headers = signed_katalo(f"job_forged_{i}", "whsec_not_the_stack_secret")
        status, _, _ = http("POST", f"{receiver_url}/webhooks/katalo", body, headers)
        if status != 401:
            fail(f"a forged delivery answered {status}, not 401")

    # APIMP: a watched Kling task that calls back through its minted URL.
    import subprocess

    # The operator's CLI, on this stack only (no service-specific endpoint left over).
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    outputs, w = state["outputs"], state["functions"]["worker"]["env"]
    env.update({
        "AWS_ENDPOINT_URL": moto_url, "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": admin["key"], "AWS_SECRET_ACCESS_KEY": admin["secret"],
        "GENHOOK_TABLE": w["GENHOOK_TABLE"], "GENHOOK_INBOX_QUEUE_URL": w["GENHOOK_INBOX_QUEUE_URL"],
        "GENHOOK_INBOX_DLQ_URL": w["GENHOOK_INBOX_DLQ_URL"], "GENHOOK_OUTBOX_QUEUE_URL": w["GENHOOK_OUTBOX_QUEUE_URL"],
    })
    watch = subprocess.run(
        [genhook, "watch", "--aws", "--ref", "rehearsal-1", "--task-id", "task_rehearsal_1", "--upstream", "kling"],
        env=env, capture_output=True, text=True,
    )
    if watch.returncode != 0:
        fail(f"genhook watch failed: {watch.stderr[-500:]}")
    # The watch's poll publishes the task; the callback then comes as a late hint. (Sent
    # together, the second of the two waits out the first one's lease, 2 minutes.)
    invocations = event_source_mapping(state, moto_url, worker_url)
    minted = subprocess.run(
        [genhook, "callback-url", "--upstream", "kling", "--ref", "rehearsal-1", "--base-url", receiver_url, "--secret", SECRETS["ApimpCallbackSecret"]],
        env=env, check=True, capture_output=True, text=True,
    ).stdout.strip()
    callback = json.dumps({"task_id": "kling_rehearsal_1", "task_status": "succeed"}).encode()
    status, _, answer = http("POST", minted, callback, {"content-type": "application/json"})
    if status != 200:
        fail(f"the Kling callback answered {status}: {answer[:300]!r}")

    invocations += event_source_mapping(state, moto_url, worker_url)
    log(f"event source mapping: {invocations} worker invocations")

    # One event per job on the stack's outbox.
    sqs = adm("sqs")
    events = []
    while True:
        got = sqs.receive_message(QueueUrl=w["GENHOOK_OUTBOX_QUEUE_URL"], MaxNumberOfMessages=10, VisibilityTimeout=300).get("Messages", [])
        if not got:
            break
        events.extend(json.loads(m["Body"]) for m in got)
    seen = sorted((e["provider"], e["job_id"]) for e in events)
    want = sorted([("katalo", j) for j in jobs] + [("apimp", "task_rehearsal_1")])
    if seen != want:
        fail(f"expected one event per job {want}, got {seen}")
    log(f"{len(events)} events on the outbox, one per job")

    # Each delivery can be followed end to end: the X-Ray trace the receiver ran under
    # (and its request id, when the front end gives one) is named in the event.
    for e in events:
        if e["provider"] == "katalo" and not str(e.get("trace", {}).get("xray_trace_header", "")).startswith("Root="):
            fail(f"the event of {e['job_id']} does not name its delivery's trace: {e.get('trace')}")
    log(f"each delivery's trace reached its event, e.g. {events[0].get('trace')}")

    # An output link, through the links function.
    link = next(o["link"] for e in events for o in e["outputs"] if o.get("link"))
    status, headers, _ = http("GET", link)
    if status != 302 or "X-Amz-Signature=" not in headers.get("location", headers.get("Location", "")):
        fail(f"following {link.split('?')[0]} answered {status}")
    log("an output link redirected to a freshly signed URL")

    check_resources(state, adm)
    log(f"driven and checked in {time.time() - started:.1f} s")


def check_resources(state, adm):
    """The DLQs and the alarms docs/operations.md states."""
    sqs = adm("sqs")
    for queue, dlq, receives in (("InboxQueue", "InboxDLQ", "20"), ("OutboxQueue", "OutboxDLQ", "5")):
        url = sqs.get_queue_url(QueueName=state["resources"][queue].rsplit("/", 1)[-1])["QueueUrl"]
        policy = json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"])
        if str(policy["maxReceiveCount"]) != receives or not policy["deadLetterTargetArn"].endswith(state["resources"][dlq].rsplit("/", 1)[-1]):
            fail(f"{queue}'s redrive policy is {policy}")
    # moto's CloudFormation creates no AWS::CloudWatch::Alarm (it says so and skips
    # them), so the alarms are checked in the translated template: each watches a
    # resource of the stack, with a threshold and an operator.
    if not state["alarms"]:
        fail("the template defines no alarms")
    for logical, want in state["alarms"].items():
        if want["Threshold"] is None or not want["ComparisonOperator"] or not want["AlarmDescription"]:
            fail(f"alarm {logical} lacks a threshold, an operator or a description: {want}")
    # docs/operations.md states each alarm's threshold: its row names the alarm and the number.
    readme = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "operations.md")).read()
    rows = [line for line in readme.splitlines() if line.startswith("| `") and "Alarm" in line]
    for logical, want in state["alarms"].items():
        row = next((r for r in rows if f"`{logical}`" in r), None)
        if row is None:
            fail(f"the alarm table of docs/operations.md does not list {logical}")
        threshold = float(want["Threshold"])
        number = str(int(threshold)) if threshold.is_integer() else str(threshold)
        if number not in row:
            fail(f"the row in docs/operations.md for {logical} does not state its threshold {number}: {row}")
    log(f"DLQs with their redrive policies; {len(state['alarms'])} alarms in the template, each in docs/operations.md with its threshold")


def check_logs(args):
    """Nothing a function logged holds a secret, and no call was denied."""
    work = args[0]
    state = load(work, "stack.json")
    secrets = state["secret_values"]
    for binary in FUNCTIONS.values():
        text = open(state_path(work, f"{binary}.log"), errors="replace").read()
        for value in secrets:
            if value in text:
                fail(f"{binary}'s log holds a secret")
        for word in ("AccessDenied", "not authorized", "X-Amz-Signature=", "token="):
            if word in text:
                line = next(l for l in text.splitlines() if word in l)
                fail(f"{binary}'s log has {word!r}: {line[:300]}")
        if "panicked" in text:
            fail(f"{binary} panicked")
    log("no secret, signed URL or AccessDenied in the functions' logs")


if __name__ == "__main__":
    phases = {"deploy": deploy, "drive": drive, "check-logs": check_logs}
    if len(sys.argv) < 2 or sys.argv[1] not in phases:
        fail("usage: rehearse.py deploy TEMPLATE WORK MOTO SIM LINKS | drive WORK MOTO RECEIVER WORKER GENHOOK | check-logs WORK")
    phases[sys.argv[1]](sys.argv[2:])
