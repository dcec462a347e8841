/* fault drills of test_store_redis.c (included there once) */
#define FAULT_TESTS cmocka_unit_test(test_conf)
