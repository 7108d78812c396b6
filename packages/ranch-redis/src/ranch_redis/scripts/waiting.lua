-- waiting: tasks waiting (not leased), in O(1).
return redis.call('HLEN', TASKS) - redis.call('ZCARD', LEASES)
