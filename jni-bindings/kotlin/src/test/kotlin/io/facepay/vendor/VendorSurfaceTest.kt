package io.facepay.vendor

import com.tencent.wxpayface.WxPayFace
import java.io.File
import java.lang.reflect.Member
import java.lang.reflect.Modifier
import java.net.URLClassLoader
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test

/**
 * The fake of the vendor library has the public surface of the classes the adapter was
 * compiled against (`facepay.wxpayface.classes`: the stubs of VENDOR-API §1, or with
 * `-Dwxpayface.aar=FILE` the AAR's own classes.jar): for every public class of the fake, the
 * same superclass, interfaces, kind, public and protected constructors, methods (with their
 * JVM descriptors and `static`) and fields (with the values of the constants). So the adapter
 * tests run over something the adapter links against as it links against the library.
 */
class VendorSurfaceTest {
    private val reference = File(System.getProperty("facepay.wxpayface.classes") ?: error("facepay.wxpayface.classes is not set"))

    /** The reference classes, with android.* from android-all, none of the fake's. */
    private val loader = URLClassLoader(
        arrayOf(reference.toURI().toURL(), File(android.os.Binder::class.java.protectionDomain.codeSource.location.toURI()).toURI().toURL()),
        ClassLoader.getPlatformClassLoader(),
    )

    private val fakeRoot = File(WxPayFace::class.java.protectionDomain.codeSource.location.toURI())

    private fun fakeClasses(): List<Class<*>> = File(fakeRoot, "com/tencent").walkTopDown()
        .filter { it.isFile && it.name.endsWith(".class") }
        .map { it.relativeTo(fakeRoot).path.removeSuffix(".class").replace(File.separatorChar, '.') }
        .filter { !it.substringAfterLast('.').startsWith("Fake") }
        .map { Class.forName(it, false, javaClass.classLoader) }
        .filter { Modifier.isPublic(it.modifiers) }
        .toList()

    private fun visible(m: Int) = Modifier.isPublic(m) || Modifier.isProtected(m)

    private fun desc(t: Class<*>): String = t.descriptorString()

    private fun surface(c: Class<*>): Set<String> {
        val out = sortedSetOf<String>()
        out += "kind ${if (c.isInterface) "interface" else if (Modifier.isAbstract(c.modifiers)) "abstract class" else "class"}"
        out += "extends ${c.superclass?.name}"
        c.interfaces.forEach { out += "implements ${it.name}" }
        c.declaredConstructors.filter { visible(it.modifiers) }.forEach { k ->
            out += "${vis(k)} <init>(${k.parameterTypes.joinToString("") { desc(it) }})"
        }
        c.declaredMethods.filter { visible(it.modifiers) && !it.isSynthetic && !it.isBridge }.forEach { m ->
            val abs = if (Modifier.isAbstract(m.modifiers)) " abstract" else ""
            out += "${vis(m)}$abs ${m.name}(${m.parameterTypes.joinToString("") { desc(it) }})${desc(m.returnType)}"
        }
        c.declaredFields.filter { visible(it.modifiers) && !it.isSynthetic }.forEach { f ->
            out += "${vis(f)} field ${f.name} ${desc(f.type)}"
        }
        return out
    }

    private fun vis(m: Member): String =
        (if (Modifier.isPublic(m.modifiers)) "public" else "protected") + (if (Modifier.isStatic(m.modifiers)) " static" else "")

    /** The values of the public static final String / Integer / primitive constants. */
    private fun constants(c: Class<*>): Map<String, Any?> = c.declaredFields
        .filter { Modifier.isPublic(it.modifiers) && Modifier.isStatic(it.modifiers) && Modifier.isFinal(it.modifiers) }
        .filter { it.type == String::class.java || it.type == Integer::class.java || it.type.isPrimitive }
        .associate { it.name to it.get(null) }

    @Test fun t9_the_fake_has_the_public_surface_of_the_vendor_classes_the_adapter_compiles_against() {
        val fakes = fakeClasses()
        val names = fakes.map { it.name }.toSet()
        // What the adapter and the library's own callbacks need, at least.
        for (n in listOf(
            "com.tencent.wxpayface.WxPayFace", "com.tencent.wxpayface.IWxPayfaceCallback",
            "com.tencent.wxpayface.IWxPayFaceCallbackAIDL", "com.tencent.wxpayface.IWxPayFaceCallbackAIDL\$Stub",
            "com.tencent.wxpayface.data.UserInfo", "com.tencent.wxpayface.data.K12UserInfo",
            "com.tencent.wxpayface.data.DataUtil", "com.tencent.wxpayface.log.WxLog",
        )) assertTrue("the fake has $n", n in names)
        for (fake in fakes) {
            val ref = Class.forName(fake.name, false, loader)
            assertEquals("the public surface of ${fake.name}", surface(ref).joinToString("\n"), surface(fake).joinToString("\n"))
            val refConsts = constants(Class.forName(fake.name, true, loader))
            assertEquals("the constants of ${fake.name}", refConsts, constants(fake))
        }
    }
}
