-- A CPU quota below one millicore rendered as `cpu: 0m` in a pod, which the kubelet reads as no limit
-- at all (issue 18). From now on cpu_request and cpu_limit are at least 0.001 cores (1m), the smallest
-- amount Kubernetes can express. NOT VALID: a database that already holds such a row still migrates
-- (rewriting an administrator's quota behind their back would be worse); every INSERT and UPDATE of a
-- row is checked from now on, and a launch under an old row is refused with a message naming the
-- experiment (kernels/lifecycle/quota-check.ts) until an administrator raises it.
ALTER TABLE experiments
  ADD CONSTRAINT experiments_cpu_request_representable CHECK (cpu_request >= 0.001) NOT VALID,
  ADD CONSTRAINT experiments_cpu_limit_representable CHECK (cpu_limit >= 0.001) NOT VALID;
