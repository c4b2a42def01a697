package io.facepay.vendor

import java.io.File
import java.lang.reflect.Modifier
import java.net.URLClassLoader
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Assume.assumeTrue
import org.junit.Test

/**
 * SPEC T7.9 proven on ProGuard's output: `vendor-data-shrunk.jar` is the fake's `UserInfo` and
 * `K12UserInfo` shrunk and obfuscated with proguard-rules.pro alone (pom.xml, profile
 * `shrunk`). The library builds K12UserInfo with a plain Gson by field name (VENDOR-API §5.1,
 * §6): the class must stay concrete with its five fields and getters. Runs in the ProGuard run
 * only (`-Pshrunk`, as scripts/test-jvm runs it); skipped in the plain run.
 */
class K12KeepRuleTest {
    private fun jarOf(c: Class<*>) = File(c.protectionDomain.codeSource.location.toURI()).toURI().toURL()

    @Test fun t7_9_gson_still_builds_k12userinfo_after_proguard_with_the_keep_rules() {
        val shrunk = System.getProperty("facepay.vendor.data.shrunk")
        assumeTrue("only in the ProGuard run (-Pshrunk)", shrunk != null)
        val jar = File(shrunk!!)
        assertTrue("ProGuard wrote $jar", jar.isFile)
        val loader = URLClassLoader(
            arrayOf(jar.toURI().toURL(), jarOf(android.os.Parcelable::class.java), jarOf(com.google.gson.Gson::class.java)),
            ClassLoader.getPlatformClassLoader(),
        )
        val k12 = loader.loadClass("com.tencent.wxpayface.data.K12UserInfo")
        assertFalse("K12UserInfo stays concrete", Modifier.isAbstract(k12.modifiers))
        val user = loader.loadClass("com.tencent.wxpayface.data.UserInfo")
        assertEquals(setOf("userId", "outUserId", "userName", "userInfo", "status"), user.declaredFields.filter { !Modifier.isStatic(it.modifiers) }.map { it.name }.toSet())
        val gson = loader.loadClass("com.google.gson.Gson").getConstructor().newInstance()
        val json = """{"userId":"u-1","outUserId":"out-1","userName":"n","userInfo":"{}","status":"FS_NORMAL"}"""
        val u = gson.javaClass.getMethod("fromJson", String::class.java, Class::class.java).invoke(gson, json, k12)
        assertEquals(k12, u.javaClass)
        assertEquals("u-1", k12.getMethod("getUserId").invoke(u))
        assertEquals("out-1", k12.getMethod("getOutUserId").invoke(u))
        assertEquals("FS_NORMAL", k12.getMethod("getStatus").invoke(u))
        assertEquals(true, k12.getMethod("isValidUser").invoke(u))
    }
}
